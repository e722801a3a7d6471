/** Tokenisation with Hugging Face `tokenizers` from tokenizer.json, into padded id/mask tensors. */
import { Tokenizer } from 'tokenizers';
import { MatchdError } from '../errors.ts';
import type { TextEncoderSpec } from './manifest.ts';

export interface TokenBatch {
  ids: BigInt64Array | Int32Array;
  mask: BigInt64Array | Int32Array;
  dims: [number, number];
  /** Per text: true when it was longer than maxLength and was cut. */
  truncated: boolean[];
}

/** Build the query string the model expects (instruction template), e.g. GME's query instruction. */
export function buildQuery(text: string, spec: TextEncoderSpec): string {
  return spec.query.template.replaceAll('{instruction}', spec.query.instruction).replaceAll('{text}', text);
}

export class TextTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    /** The same tokenizer with its own truncation at maxLength (special tokens kept), for the rare long text. */
    private readonly truncating: Tokenizer,
    private readonly spec: TextEncoderSpec,
  ) {}

  /** Load tokenizer.json twice: as is (to detect overlong texts) and truncating at the manifest's maxLength. */
  static load(file: string, spec: TextEncoderSpec): TextTokenizer {
    let tok: Tokenizer;
    let truncating: Tokenizer;
    try {
      tok = Tokenizer.fromFile(file);
      truncating = Tokenizer.fromFile(file);
    } catch (err) {
      throw new MatchdError('MATCHD_MODEL_INVALID', `cannot load tokenizer ${file}: ${(err as Error).message}`, { path: file });
    }
    for (const t of [tok, truncating]) {
      t.disablePadding();
      t.disableTruncation();
    }
    truncating.setTruncation(spec.maxLength);
    return new TextTokenizer(tok, truncating, spec);
  }

  vocabSize(): number {
    return this.tok.getVocabSize(true);
  }

  /** Token strings for one text (for tests and debugging). */
  async tokens(text: string): Promise<string[]> {
    return (await this.tok.encode(text)).getTokens();
  }

  /** Ids back to text (special tokens skipped), for round-trip checks. */
  async decode(ids: number[]): Promise<string> {
    return this.tok.decode(ids, true);
  }

  /** Encode already-validated query strings into one padded batch. */
  async encode(queries: string[]): Promise<TokenBatch> {
    const encodings = await this.tok.encodeBatch(queries);
    // The binding reports no overflow, so measure: texts over the limit are re-encoded with truncation.
    const truncated = encodings.map((e) => e.getLength() > this.spec.maxLength);
    await Promise.all(
      encodings.map(async (_, i) => {
        if (truncated[i]) encodings[i] = await this.truncating.encode(queries[i]!);
      }),
    );
    const longest = Math.max(1, ...encodings.map((e) => e.getLength()));
    const len = this.spec.padding === 'max_length' ? this.spec.maxLength : longest;
    const n = queries.length;
    const wide = this.spec.dtype === 'int64';
    const ids = wide ? new BigInt64Array(n * len) : new Int32Array(n * len);
    const mask = wide ? new BigInt64Array(n * len) : new Int32Array(n * len);
    const pad = wide ? BigInt(this.spec.padId) : this.spec.padId;
    encodings.forEach((e, row) => {
      const tokenIds = e.getIds();
      const attention = e.getAttentionMask();
      for (let j = 0; j < len; j++) {
        const at = row * len + j;
        if (j < tokenIds.length) {
          ids[at] = wide ? BigInt(tokenIds[j]!) : tokenIds[j]!;
          mask[at] = wide ? BigInt(attention[j]!) : attention[j]!;
        } else {
          ids[at] = pad as never;
          mask[at] = (wide ? 0n : 0) as never;
        }
      }
    });
    return { ids, mask, dims: [n, len], truncated };
  }
}
