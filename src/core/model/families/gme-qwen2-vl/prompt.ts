/**
 * GME's prompts, tokenised the way the reference does: texts are queries with the query instruction, images are
 * documents with the document instruction and one `<|image_pad|>` per merged visual token, truncated on the right at
 * maxLength. An image prompt is always prefix + N pads + suffix, so the two constant parts are tokenised once at
 * open and each image only repeats the pad id (the same ids the tokenizer gives for N pads: added tokens are split
 * out before the model sees the text).
 */
import { Tokenizer } from 'tokenizers';
import { MatchdError } from '../../../errors.ts';
import { problemsError } from '../../../problems.ts';
import type { GmeSpec } from '../../manifest.ts';

export interface Prompt {
  ids: number[];
  /** True when the prompt was cut at maxLength. */
  truncated: boolean;
}

/** The template filled in: `{instruction}`, `{vision}` and `{text}` replaced in one pass (a text may contain braces). */
export function fillTemplate(template: string, parts: { instruction: string; vision: string; text: string }): string {
  return template.replace(/\{(instruction|vision|text)\}/g, (_, k: keyof typeof parts) => parts[k]);
}

export class GmePrompts {
  private constructor(
    private readonly tok: Tokenizer,
    private readonly spec: GmeSpec['text'],
    /** Image prompt ids before and after the run of pads. */
    private readonly imagePrefix: number[],
    private readonly imageSuffix: number[],
  ) {}

  /** Load tokenizer.json and check that the template tokenises with exactly one image pad where it should. */
  static async load(file: string, spec: GmeSpec['text'], where: string): Promise<GmePrompts> {
    let tok: Tokenizer;
    try {
      tok = Tokenizer.fromFile(file);
    } catch (err) {
      throw new MatchdError('MATCHD_MODEL_INVALID', `cannot load tokenizer ${file}: ${(err as Error).message}`, { path: file });
    }
    tok.disablePadding();
    tok.disableTruncation();
    const problems: string[] = [];
    const padId = tok.tokenToId(spec.imagePad);
    if (padId !== spec.imagePadId) problems.push(`${where}.text.imagePadId: the tokenizer gives '${spec.imagePad}' the id ${padId ?? 'none'}, the manifest says ${spec.imagePadId}`);
    if (!spec.vision.includes(spec.imagePad)) problems.push(`${where}.text.vision: '${spec.vision}' does not contain the image pad '${spec.imagePad}'`);
    const ids = (await tok.encode(fillTemplate(spec.template, { instruction: spec.documentInstruction, vision: spec.vision, text: '' }))).getIds();
    const pads = ids.flatMap((id, i) => (id === spec.imagePadId ? [i] : []));
    if (problems.length === 0 && pads.length !== 1) problems.push(`${where}.text.template: an image prompt has ${pads.length} image pads after tokenising, expected 1`);
    if (problems.length) throw problemsError('MATCHD_MODEL_INVALID', `tokenizer ${file} does not fit the manifest`, problems);
    return new GmePrompts(tok, spec, ids.slice(0, pads[0]), ids.slice(pads[0]! + 1));
  }

  private cut(ids: number[]): Prompt {
    const truncated = ids.length > this.spec.maxLength;
    return { ids: truncated ? ids.slice(0, this.spec.maxLength) : ids, truncated };
  }

  /** Token ids of text queries (with the query instruction). */
  async texts(texts: string[]): Promise<Prompt[]> {
    const filled = texts.map((text) => fillTemplate(this.spec.template, { instruction: this.spec.queryInstruction, vision: '', text }));
    const encodings = await this.tok.encodeBatch(filled);
    return encodings.map((e) => this.cut(e.getIds()));
  }

  /**
   * Token ids of an image document with `visualTokens` pads. Cutting into the pads would leave visual tokens without
   * a place (the reference fails there too), so that is refused; cutting only the suffix is what the reference does.
   */
  image(visualTokens: number): Prompt {
    if (this.imagePrefix.length + visualTokens > this.spec.maxLength) {
      throw new MatchdError(
        'MATCHD_IMAGE_TOO_LARGE',
        `the image needs ${visualTokens} visual tokens, more than fit in text.maxLength ${this.spec.maxLength} (lower image.maxPixels or raise text.maxLength)`,
        { visualTokens, maxLength: this.spec.maxLength },
      );
    }
    return this.cut([...this.imagePrefix, ...new Array<number>(visualTokens).fill(this.spec.imagePadId), ...this.imageSuffix]);
  }
}
