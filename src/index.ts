/** matchd as a library: the matcher, the engine and the error catalogue. */
export { Matcher, checkTexts, type MatcherOptions, type TextEmbedding, type ImageEmbedding, type PairResult, type TextScore } from './core/matcher.ts';
export { InferenceSession, type EngineOptions } from './core/engine.ts';
export { MatchdError, ERROR_CODES, isMatchdError, type ErrorCode } from './core/errors.ts';
export { loadImage } from './core/image/decode.ts';
export type { ImageInput, ImageSpec, DecodeLimits } from './core/image/spec.ts';
export { readPackage } from './core/model/package.ts';
