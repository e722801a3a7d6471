"""What a Qwen2-VL (GME) checkpoint must contain: settings from config.json, the expected key -> shape table, and a
validation that lists EVERY problem (config, tokenizer, files, tensors) before anything is written.

config.json comes in two layouts: transformers 4.45-4.51 keep the text settings at the top level; newer versions nest
them under `text_config` (and may move rope_theta into `rope_parameters`). Vision settings are under `vision_config`
in both; missing vision keys take transformers' Qwen2VLVisionConfig defaults, as transformers itself does (GME's
config.json, for one, spells `in_chans`, which transformers ignores). Tensor keys come in two layouts as well: legacy
(`visual.*`, `model.layers.N.*`) and the newer `model.visual.*` / `model.language_model.*`.
"""
import json
import os

from safetensors_reader import Checkpoint

SUPPORTED_ARCHITECTURES = ('Qwen2VLForConditionalGeneration',)
SUPPORTED_MODEL_TYPES = ('qwen2_vl',)

VISION_DEFAULTS = {
    'depth': 32, 'embed_dim': 1280, 'hidden_size': 3584, 'hidden_act': 'quick_gelu', 'mlp_ratio': 4,
    'num_heads': 16, 'in_channels': 3, 'patch_size': 14, 'spatial_merge_size': 2, 'temporal_patch_size': 2,
}
TEXT_REQUIRED = ('vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
                 'num_key_value_heads', 'rms_norm_eps')
# Qwen2's special tokens the GME prompt uses, as (config key, token, default id).
SPECIAL_TOKENS = (
    ('pad', '<|endoftext|>', 151643),
    ('im_start', '<|im_start|>', 151644),
    ('im_end', '<|im_end|>', 151645),
    ('vision_start_token_id', '<|vision_start|>', 151652),
    ('vision_end_token_id', '<|vision_end|>', 151653),
    ('image_token_id', '<|image_pad|>', 151655),
)


class Spec:
    """Validated model settings. `key(name)` maps a legacy key name to the checkpoint's own layout."""

    def __init__(self):
        self.layout = 'legacy'
        self.vision = {}
        self.text = {}
        self.tokens = {}
        self.tied = False

    def key(self, name):
        if self.layout == 'legacy' or name == 'lm_head.weight':
            return name
        if name.startswith('visual.'):
            return 'model.' + name
        return 'model.language_model.' + name[len('model.'):]

    @property
    def patch_dim(self):
        v = self.vision
        return v['in_channels'] * v['temporal_patch_size'] * v['patch_size'] ** 2


def _int(problems, where, name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.append(f'config.json: {where}{name} must be an integer >= {minimum}, found {value!r}')
        return None
    return value


def _number(problems, where, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        problems.append(f'config.json: {where}{name} must be a positive number, found {value!r}')
        return None
    return float(value)


def read_config(directory, problems):
    """Parse config.json into a Spec (or None when the architecture cannot be known)."""
    path = os.path.join(directory, 'config.json')
    try:
        with open(path, encoding='utf-8') as f:
            cfg = json.load(f)
    except FileNotFoundError:
        problems.append('config.json: missing (not a Hugging Face checkpoint folder?)')
        return None
    except (OSError, ValueError) as e:
        problems.append(f'config.json: cannot be read as JSON ({e})')
        return None
    if not isinstance(cfg, dict):
        problems.append('config.json: not a JSON object')
        return None
    archs = cfg.get('architectures') or []
    model_type = cfg.get('model_type')
    if not (any(a in SUPPORTED_ARCHITECTURES for a in archs if isinstance(a, str)) or model_type in SUPPORTED_MODEL_TYPES):
        found = ', '.join(map(str, archs)) or f'model_type {model_type!r}'
        problems.append(f'config.json: unknown architecture {found} (supported: {", ".join(SUPPORTED_ARCHITECTURES)})')
        return None

    spec = Spec()
    text_cfg = cfg.get('text_config') if isinstance(cfg.get('text_config'), dict) else {}
    where = 'text_config.' if text_cfg else ''

    def text_value(name, default=None):
        if name in text_cfg:
            return text_cfg[name]
        return cfg.get(name, default)

    t = spec.text
    for name in TEXT_REQUIRED:
        value = text_value(name)
        if value is None:
            problems.append(f'config.json: {where}{name} is missing')
        elif name == 'rms_norm_eps':
            t[name] = _number(problems, where, name, value)
        else:
            t[name] = _int(problems, where, name, value)
    rope = text_value('rope_parameters') or {}
    theta = text_value('rope_theta', rope.get('rope_theta') if isinstance(rope, dict) else None)
    t['rope_theta'] = _number(problems, where, 'rope_theta', theta) if theta is not None else None
    if theta is None:
        problems.append(f'config.json: {where}rope_theta is missing')
    scaling = text_value('rope_scaling') or rope or {}
    rope_type = scaling.get('rope_type', scaling.get('type')) if isinstance(scaling, dict) else None
    if rope_type not in (None, 'default', 'mrope'):
        problems.append(f'config.json: rope scaling {rope_type!r} is not supported (GME uses plain/M-RoPE positions)')
    if text_value('hidden_act', 'silu') != 'silu':
        problems.append(f'config.json: {where}hidden_act {text_value("hidden_act")!r} is not supported (Qwen2 uses silu)')
    # Either level may say it (newer transformers write a text_config default beside the top-level value); lm_head is
    # not used for embeddings, so reading "tied" too generously can only skip a check, never break an export.
    spec.tied = bool(text_cfg.get('tie_word_embeddings')) or bool(cfg.get('tie_word_embeddings'))
    if t.get('hidden_size') and t.get('num_attention_heads'):
        t['head_dim'] = text_value('head_dim') or t['hidden_size'] // t['num_attention_heads']
        if t['head_dim'] * t['num_attention_heads'] != t['hidden_size'] and not text_value('head_dim'):
            problems.append(f'config.json: hidden_size {t["hidden_size"]} is not a multiple of num_attention_heads')
        if t['head_dim'] % 2:
            problems.append(f'config.json: the text head size {t["head_dim"]} must be even for rotary embeddings')
    if t.get('num_attention_heads') and t.get('num_key_value_heads') and t['num_attention_heads'] % t['num_key_value_heads']:
        problems.append('config.json: num_attention_heads must be a multiple of num_key_value_heads')

    vcfg = cfg.get('vision_config')
    if not isinstance(vcfg, dict):
        problems.append('config.json: vision_config is missing')
        vcfg = {}
    v = spec.vision
    for name, default in VISION_DEFAULTS.items():
        value = vcfg.get(name, default)
        if name == 'hidden_act':
            if value != 'quick_gelu':
                problems.append(f'config.json: vision_config.hidden_act {value!r} is not supported (Qwen2-VL uses quick_gelu)')
            v[name] = value
        elif name == 'mlp_ratio':
            v[name] = _number(problems, 'vision_config.', name, value)
        else:
            v[name] = _int(problems, 'vision_config.', name, value)
    if v.get('embed_dim') and v.get('num_heads'):
        if v['embed_dim'] % v['num_heads'] or (v['embed_dim'] // v['num_heads']) % 4:
            problems.append('config.json: vision_config.embed_dim / num_heads must be a multiple of 4 (2-D rotary)')
        v['head_dim'] = v['embed_dim'] // v['num_heads']
    if v.get('embed_dim') and v.get('mlp_ratio'):
        v['mlp_dim'] = int(v['embed_dim'] * v['mlp_ratio'])
    if v.get('hidden_size') and t.get('hidden_size') and v['hidden_size'] != t['hidden_size']:
        problems.append(f'config.json: vision_config.hidden_size {v["hidden_size"]} must equal the text hidden_size '
                        f'{t["hidden_size"]} (the merger feeds the decoder)')

    for key, token, default in SPECIAL_TOKENS:
        value = cfg.get(key, text_cfg.get(key, default)) if key.endswith('_id') else default
        spec.tokens[token] = value
    return spec


def expected_tensors(spec):
    """Legacy key name -> shape for every tensor the exporter needs (lm_head only when embeddings are untied)."""
    v, t = spec.vision, spec.text
    needed_v = ('embed_dim', 'mlp_dim', 'spatial_merge_size', 'in_channels', 'temporal_patch_size', 'patch_size',
                'depth', 'hidden_size')
    needed_t = ('hidden_size', 'head_dim', 'num_attention_heads', 'num_key_value_heads', 'intermediate_size',
                'vocab_size', 'num_hidden_layers')
    if any(v.get(k) is None for k in needed_v) or any(t.get(k) is None for k in needed_t):
        return {}  # settings already reported as problems; shapes cannot be derived
    e, r, c = v['embed_dim'], v['mlp_dim'], v['embed_dim'] * v['spatial_merge_size'] ** 2
    shapes = {'visual.patch_embed.proj.weight': (e, v['in_channels'], v['temporal_patch_size'], v['patch_size'], v['patch_size'])}
    for i in range(v['depth']):
        b = f'visual.blocks.{i}.'
        shapes.update({
            b + 'norm1.weight': (e,), b + 'norm1.bias': (e,), b + 'norm2.weight': (e,), b + 'norm2.bias': (e,),
            b + 'attn.qkv.weight': (3 * e, e), b + 'attn.qkv.bias': (3 * e,),
            b + 'attn.proj.weight': (e, e), b + 'attn.proj.bias': (e,),
            b + 'mlp.fc1.weight': (r, e), b + 'mlp.fc1.bias': (r,),
            b + 'mlp.fc2.weight': (e, r), b + 'mlp.fc2.bias': (e,),
        })
    shapes.update({
        'visual.merger.ln_q.weight': (e,), 'visual.merger.ln_q.bias': (e,),
        'visual.merger.mlp.0.weight': (c, c), 'visual.merger.mlp.0.bias': (c,),
        'visual.merger.mlp.2.weight': (v['hidden_size'], c), 'visual.merger.mlp.2.bias': (v['hidden_size'],),
    })
    h, hd, nh, kv, inter = t['hidden_size'], t['head_dim'], t['num_attention_heads'], t['num_key_value_heads'], t['intermediate_size']
    shapes['model.embed_tokens.weight'] = (t['vocab_size'], h)
    for i in range(t['num_hidden_layers']):
        b = f'model.layers.{i}.'
        shapes.update({
            b + 'input_layernorm.weight': (h,), b + 'post_attention_layernorm.weight': (h,),
            b + 'self_attn.q_proj.weight': (nh * hd, h), b + 'self_attn.q_proj.bias': (nh * hd,),
            b + 'self_attn.k_proj.weight': (kv * hd, h), b + 'self_attn.k_proj.bias': (kv * hd,),
            b + 'self_attn.v_proj.weight': (kv * hd, h), b + 'self_attn.v_proj.bias': (kv * hd,),
            b + 'self_attn.o_proj.weight': (h, nh * hd),
            b + 'mlp.gate_proj.weight': (inter, h), b + 'mlp.up_proj.weight': (inter, h),
            b + 'mlp.down_proj.weight': (h, inter),
        })
    shapes['model.norm.weight'] = (h,)
    if not spec.tied:
        shapes['lm_head.weight'] = (t['vocab_size'], h)
    return shapes


def _detect_layout(keys):
    newer = sum(1 for k in keys if k.startswith(('model.visual.', 'model.language_model.')))
    legacy = sum(1 for k in keys if k.startswith(('visual.', 'model.layers.', 'model.embed_tokens.', 'model.norm.')))
    return 'new' if newer > legacy else 'legacy'


def check_tokenizer(directory, spec, problems):
    """tokenizer.json must exist, parse, and hold the prompt's special tokens at the ids the model uses."""
    path = os.path.join(directory, 'tokenizer.json')
    try:
        with open(path, encoding='utf-8') as f:
            tok = json.load(f)
    except FileNotFoundError:
        problems.append('tokenizer.json: missing (the package needs the checkpoint\'s own tokenizer)')
        return
    except (OSError, ValueError) as e:
        problems.append(f'tokenizer.json: cannot be read as JSON ({e})')
        return
    added = {a.get('content'): a.get('id') for a in tok.get('added_tokens') or [] if isinstance(a, dict)}
    for token, want in spec.tokens.items():
        if added.get(token) != want:
            problems.append(f'tokenizer.json: special token {token} should have id {want}, found {added.get(token)!r}')


def validate(directory):
    """Return (spec, checkpoint, problems, warnings). The caller writes nothing unless `problems` is empty."""
    problems, warnings = [], []
    if not os.path.isdir(directory):
        return None, None, [f'{directory}: not a directory'], warnings
    spec = read_config(directory, problems)
    if spec is None:
        return None, None, problems, warnings
    check_tokenizer(directory, spec, problems)
    ckpt = Checkpoint(directory)
    problems.extend(ckpt.problems)
    spec.layout = _detect_layout(ckpt.tensors.keys()) if ckpt.tensors else 'legacy'
    expected = expected_tensors(spec)
    seen = set()
    unchecked = 0
    for name, shape in expected.items():
        key = spec.key(name)
        seen.add(key)
        info = ckpt.tensors.get(key)
        if info is None:
            if key in ckpt.broken:
                continue  # its header entry is already reported
            if ckpt.in_unreadable_file(key):
                unchecked += 1
            else:
                problems.append(f'{key}: missing (expected shape {list(shape)})')
        elif info.shape != shape:
            problems.append(f'{key}: wrong shape {list(info.shape)}, expected {list(shape)}')
    if unchecked:
        problems.append(f'{unchecked} expected tensor(s) could not be checked because their file is unreadable')
    extra = sorted(k for k in ckpt.tensors if k not in seen and k != 'lm_head.weight')
    if extra:
        warnings.append(f'ignoring {len(extra)} tensor(s) the exporter does not use: {", ".join(extra[:5])}'
                        + (' ...' if len(extra) > 5 else ''))
    return spec, ckpt, problems, warnings
