/**
 * Per-family starting points for the score mapping and the bands of an imported package. They are starting points,
 * not a calibration: nobody has checked them against your images and texts, so an imported package says
 * `calibrated: false` and its description says so too. README "Use a real model" explains how to pick thresholds.
 *
 * - CLIP: the cosine of a matching caption with ViT-B/32 typically sits around 0.28–0.35 and an
 *   unrelated one around 0.15–0.22, so the linear range is [0.15, 0.35] and the bands are on the cosine.
 * - SigLIP: the checkpoint's own calibration, sigmoid(exp(logit_scale) · cos + logit_bias), trained so that 0.5 means
 *   "this text describes this image"; bands on that probability. Matching captions often score 0.1–0.6, hence the
 *   review band reaching down to 0.05. Without the checkpoint's values (no combined model.onnx and no
 *   --logit-scale / --logit-bias), a linear mapping over the cosines those thresholds correspond to for SigLIP base
 *   (logit_scale ≈ 117, logit_bias ≈ −12.9).
 */
import type { HfModelType } from './hf-config.ts';

export interface Logits {
  /** exp(logit_scale): what the cosine is multiplied by. */
  scale: number;
  /** logit_bias (SigLIP); absent for CLIP, which trains with a softmax instead. */
  bias: number | null;
  /** Where they were read: a file and the initializer names. */
  source: string;
}

type Band = { name: string; min?: number };
export interface Calibration {
  score: Record<string, unknown>;
  bands: { on: 'cosine' | 'score'; list: Band[] };
  /** One sentence for the description and `inspect`. */
  note: string;
}

const BAND_NAMES = ['adopt', 'review', 'improve', 'reject'] as const;

function bands(on: 'cosine' | 'score', [a, b, c]: [number, number, number]): Calibration['bands'] {
  return { on, list: [{ name: BAND_NAMES[0], min: a }, { name: BAND_NAMES[1], min: b }, { name: BAND_NAMES[2], min: c }, { name: BAND_NAMES[3] }] };
}

export function startingCalibration(type: HfModelType, logits: Logits | null): Calibration {
  if (type === 'siglip') {
    if (logits && logits.bias !== null) {
      return {
        score: { mapping: 'sigmoid', logitScale: logits.scale, logitBias: logits.bias, calibrated: false },
        bands: bands('score', [0.3, 0.05, 0.005]),
        note: `score = sigmoid(${round(logits.scale)} · cosine ${logits.bias < 0 ? '−' : '+'} ${round(Math.abs(logits.bias))}) as the checkpoint was trained (${logits.source}); the bands are SigLIP starting points, not calibrated on your images`,
      };
    }
    return {
      score: { mapping: 'linear', range: [0.05, 0.15], calibrated: false },
      bands: bands('cosine', [0.1, 0.085, 0.065]),
      note: 'no logit_scale / logit_bias found (no combined model.onnx; pass --logit-scale and --logit-bias), so a linear range and cosine bands from SigLIP base stand in: not calibrated',
    };
  }
  return {
    score: { mapping: 'linear', range: [0.15, 0.35], calibrated: false },
    bands: bands('cosine', [0.3, 0.26, 0.22]),
    note: `score and bands are CLIP ViT-B/32 starting points (matching captions ≈ 0.28–0.35 cosine), not calibrated on your images`,
  };
}

function round(x: number): string {
  return Number(x.toPrecision(5)).toString();
}
