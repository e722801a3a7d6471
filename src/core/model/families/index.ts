/** The model families by name: `model.yaml`'s `family` picks one. */
import { invalidPackage, type ModelPackage } from '../package.ts';
import { dualEncoder } from './dual-encoder/index.ts';
import type { FamilyModel, FamilyOptions, ModelFamily } from './family.ts';
import { gmeQwen2Vl } from './gme-qwen2-vl/index.ts';

export type { EncodedText, FamilyModel, FamilyOptions, ModelFamily, PreparedImage } from './family.ts';

const FAMILIES: Record<string, ModelFamily> = {
  [dualEncoder.name]: dualEncoder,
  [gmeQwen2Vl.name]: gmeQwen2Vl,
};

/** Open a package with its family's runtime. */
export function openFamily(pkg: ModelPackage, options: FamilyOptions): Promise<FamilyModel> {
  const family = FAMILIES[pkg.manifest.family];
  if (!family) {
    throw invalidPackage(pkg.dir, [`family: this build has no runtime for '${pkg.manifest.family}' (it has: ${Object.keys(FAMILIES).join(', ')})`]);
  }
  return family.open(pkg, options);
}
