/**
 * Builds the demo model package (models/demo/) and the sample images (samples/), both committed.
 *   npm run make:demo
 *
 * The demo is a tiny, honest, hand-built dual encoder that understands basic colour words. It is NOT a trained
 * model and knows nothing beyond colour: the image encoder assigns each pixel to the nearest of ten prototype
 * colours (a 1×1 convolution + softmax) and averages, giving a colour histogram; the text encoder looks each word up
 * in a word-level vocabulary whose colour words map to those same ten axes (a masked mean of embeddings). Both run
 * through the same engine, tokenizer and scoring code as a real model package.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { GraphBuilder, dataTypeOf } from '../test/fixtures/onnx-builder.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'models', 'demo');
const samples = path.join(root, 'samples');

/** The ten colour axes and their prototype RGB (0–1). Axis 10 is "no colour" (words like "a", "photo"). */
export const COLOURS: [string, [number, number, number]][] = [
  ['red', [0.85, 0.1, 0.1]],
  ['orange', [1.0, 0.55, 0.05]],
  ['yellow', [1.0, 0.9, 0.1]],
  ['green', [0.1, 0.62, 0.15]],
  ['blue', [0.1, 0.25, 0.88]],
  ['purple', [0.5, 0.15, 0.65]],
  ['pink', [1.0, 0.6, 0.75]],
  ['white', [0.96, 0.96, 0.96]],
  ['grey', [0.5, 0.5, 0.5]],
  ['black', [0.04, 0.04, 0.04]],
];
const K = COLOURS.length + 1;
const NONE = COLOURS.length;
const SIZE = 32;
const TEMPERATURE = 25;

/** Synonyms and mixes: word → weights on the colour axes. */
const WORDS: Record<string, Record<string, number>> = {
  ...Object.fromEntries(COLOURS.map(([c]) => [c, { [c]: 1 }])),
  gray: { grey: 1 },
  violet: { purple: 1 },
  crimson: { red: 1 },
  scarlet: { red: 1 },
  navy: { blue: 1 },
  silver: { grey: 0.7, white: 0.7 },
  gold: { yellow: 0.8, orange: 0.6 },
  lime: { green: 0.8, yellow: 0.6 },
  cyan: { blue: 0.7, green: 0.7 },
  magenta: { pink: 0.7, purple: 0.7 },
  brown: { orange: 0.6, black: 0.5, red: 0.4 },
};

function imageEncoder(file: string): void {
  const w = new Float32Array(K * 3);
  const b = new Float32Array(K);
  COLOURS.forEach(([, rgb], k) => {
    // logit_k = -T·|p − c_k|² + T·|p|²  =  2T·(p·c_k) − T·|c_k|²  (the |p|² term is the same for every k)
    rgb.forEach((v, ch) => (w[k * 3 + ch] = 2 * TEMPERATURE * v));
    b[k] = -TEMPERATURE * rgb.reduce((s, v) => s + v * v, 0);
  });
  b[NONE] = -1e4; // pixels never vote "no colour"
  new GraphBuilder('demo_image_encoder')
    .input('pixel_values', 'float32', ['batch', 3, SIZE, SIZE])
    .initializer('W', 'float32', [K, 3, 1, 1], w)
    .initializer('B', 'float32', [K], b)
    .node('Conv', ['pixel_values', 'W', 'B'], ['logits'])
    .node('Softmax', ['logits'], ['assign'], { axis: 1 })
    .node('GlobalAveragePool', ['assign'], ['hist'])
    .node('Flatten', ['hist'], ['image_embeds'], { axis: 1 })
    .output('image_embeds', 'float32', ['batch', K])
    .write(file);
}

function textEncoder(file: string, vocab: string[]): void {
  const table = new Float32Array(vocab.length * K);
  vocab.forEach((word, id) => {
    const weights = WORDS[word];
    if (word === '[PAD]') return;
    if (!weights) {
      table[id * K + NONE] = 0.3; // any other word: a little "no colour", so "a photo" matches no image
      return;
    }
    for (const [c, v] of Object.entries(weights)) table[id * K + COLOURS.findIndex(([n]) => n === c)] = v;
  });
  new GraphBuilder('demo_text_encoder')
    .input('input_ids', 'int64', ['batch', 'sequence'])
    .input('attention_mask', 'int64', ['batch', 'sequence'])
    .initializer('E', 'float32', [vocab.length, K], table)
    .initializer('axis1', 'int64', [1], BigInt64Array.of(1n))
    .initializer('axis2', 'int64', [1], BigInt64Array.of(2n))
    .initializer('one', 'float32', [], Float32Array.of(1))
    .node('Gather', ['E', 'input_ids'], ['tok'], { axis: 0 })
    .node('Cast', ['attention_mask'], ['maskf'], { to: dataTypeOf('float32') })
    .node('Unsqueeze', ['maskf', 'axis2'], ['mask3'])
    .node('Mul', ['tok', 'mask3'], ['masked'])
    .node('ReduceSum', ['masked', 'axis1'], ['summed'], { keepdims: 0 })
    .node('ReduceSum', ['maskf', 'axis1'], ['count'], { keepdims: 1 })
    .node('Max', ['count', 'one'], ['denom'])
    .node('Div', ['summed', 'denom'], ['text_embeds'])
    .output('text_embeds', 'float32', ['batch', K])
    .write(file);
}

function tokenizerJson(vocab: string[]): object {
  const special = (id: number, content: string) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '[PAD]'), special(1, '[UNK]')],
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab.map((w, i) => [w, i])), unk_token: '[UNK]' },
  };
}

const manifest = {
  $schema: '../model.schema.json',
  name: 'demo-colours',
  version: 1,
  description:
    'A tiny hand-built demo that only understands basic colour words (red, orange, yellow, green, blue, purple, ' +
    'pink, white, grey, black and a few synonyms). Not a trained model: use it to try matchd, not to judge images.',
  embeddingSize: K,
  normalized: false,
  image: {
    model: 'image.onnx', input: 'pixel_values', output: 'image_embeds',
    size: { width: SIZE, height: SIZE }, resize: 'squash',
    mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb', dtype: 'float32',
  },
  text: {
    model: 'text.onnx', tokenizer: 'tokenizer.json', inputIds: 'input_ids', attentionMask: 'attention_mask',
    output: 'text_embeds', maxLength: 32, padding: 'longest', padId: 0, dtype: 'int64',
    query: { instruction: '', template: '{text}' },
  },
  score: { range: [0, 1] },
  bands: {
    on: 'cosine',
    list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'improve', min: 0.2 }, { name: 'reject' }],
  },
};

/** Sample images: mostly one colour each, with texture so they are not trivially flat. */
async function makeSamples(): Promise<void> {
  fs.mkdirSync(samples, { recursive: true });
  const solid = async (name: string, rgb: [number, number, number], fmt: 'jpeg' | 'png' | 'webp') => {
    const w = 320, h = 240;
    const data = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const shade = 0.85 + 0.15 * Math.sin(x / 17) * Math.cos(y / 13);
        for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = Math.round(Math.min(255, rgb[c]! * shade));
      }
    }
    await sharp(data, { raw: { width: w, height: h, channels: 3 } }).toFormat(fmt).toFile(path.join(samples, name));
  };
  await solid('red.jpg', [210, 30, 35], 'jpeg');
  await solid('blue.png', [30, 70, 220], 'png');
  await solid('green.webp', [30, 160, 50], 'webp');
  await solid('yellow.jpg', [250, 225, 40], 'jpeg');
  // half orange, half black: matches both words partially
  const w = 320, h = 240;
  const split = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const left = i % w < w / 2;
    split.set(left ? [250, 140, 20] : [12, 12, 12], i * 3);
  }
  await sharp(split, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(samples, 'orange-and-black.png'));
  // a red block on blue, about a quarter of the picture: "a red product" lands in the review band (cosine ≈ 0.35),
  // so the review page has something to show after `cp samples/* inbox/`
  const block = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const x = i % w, y = Math.floor(i / w);
    const red = x >= 72 && x < 248 && y >= 50 && y < 190;
    block.set(red ? [210, 30, 35] : [30, 70, 220], i * 3);
  }
  await sharp(block, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(samples, 'red-on-blue.png'));
}

async function main(): Promise<void> {
  fs.mkdirSync(out, { recursive: true });
  const vocab = ['[PAD]', '[UNK]', ...Object.keys(WORDS)];
  imageEncoder(path.join(out, 'image.onnx'));
  textEncoder(path.join(out, 'text.onnx'), vocab);
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocab), null, 2) + '\n');
  fs.writeFileSync(path.join(out, 'model.yaml'), `# Generated by scripts/make-demo-model.ts: do not edit by hand.\n${stringify(manifest)}`);
  await makeSamples();
  console.log(`wrote ${out} and ${samples}`);
}

await main();
