"""A small tokenizer.json in Qwen2's format (byte-level BPE, Qwen2's pre-tokenizer split, NFC) with Qwen2's special
tokens as added tokens at their real ids, for test checkpoints. The vocabulary is the 256 byte tokens (in GPT-2's
byte-to-unicode order, as Qwen2's own first 256 ids are) plus merges that spell a few prompt words, then unreachable
filler entries up to id 151642: `tokenizers` gives added tokens the ids after the model's vocabulary (it warns and
ignores the ids written in added_tokens), so the vocabulary must be exactly as long as Qwen2's for them to land on
151643...; that is also how Qwen2's own tokenizer.json works."""

# Qwen2's pre-tokenizer pattern, verbatim from its tokenizer.json.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
               r"\s+(?!\S)|\s+")

ADDED_TOKENS = [
    (151643, '<|endoftext|>'), (151644, '<|im_start|>'), (151645, '<|im_end|>'),
    (151646, '<|object_ref_start|>'), (151647, '<|object_ref_end|>'), (151648, '<|box_start|>'),
    (151649, '<|box_end|>'), (151650, '<|quad_start|>'), (151651, '<|quad_end|>'),
    (151652, '<|vision_start|>'), (151653, '<|vision_end|>'), (151654, '<|vision_pad|>'),
    (151655, '<|image_pad|>'), (151656, '<|video_pad|>'),
]

WORDS = ['system', 'user', 'assistant', 'Find', ' an', ' image', ' that', ' matches', ' the', ' given', ' text',
         'You', ' are', ' a', ' helpful', ' red', ' cat', ' dog', ' photo', ' of', ' on', ' with', ' blue', ' car']


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map, in its id order."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def build_tokenizer():
    byte_map = bytes_to_unicode()
    char_of = dict(byte_map)
    vocab = {ch: i for i, (_, ch) in enumerate(byte_map)}
    merges = []
    for word in WORDS:
        chars = [char_of[b] for b in word.encode('utf-8')]
        token = chars[0]
        for ch in chars[1:]:
            merged = token + ch
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append(f'{token} {ch}')
            token = merged
    while len(vocab) < ADDED_TOKENS[0][0]:
        vocab[f'<filler{len(vocab)}>'] = len(vocab)  # no merge produces these
    byte_level = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False}
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [
            {'id': i, 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False,
             'special': True} for i, t in ADDED_TOKENS],
        'normalizer': {'type': 'NFC'},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': QWEN2_SPLIT}, 'behavior': 'Isolated', 'invert': False},
            byte_level,
        ]},
        'post_processor': byte_level,
        'decoder': byte_level,
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': '',
                  'end_of_word_suffix': '', 'fuse_unk': False, 'byte_fallback': False, 'vocab': vocab, 'merges': merges},
    }
