/**
 * Content sniffing: what an input is, from its first bytes, whatever its name says.
 * `sniffFormat` names image containers; `describeContent` says what a non-image looks like, for error messages.
 */

/** How many leading bytes the sniffers want (enough for ISO-BMFF compatible brands and an SVG prologue). */
export const SNIFF_BYTES = 512;

function startsWith(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
  if (head.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[at + i] !== bytes[i]) return false;
  return true;
}

function ascii(head: Uint8Array, at: number, length: number): string {
  if (head.length < at + length) return '';
  let s = '';
  for (let i = at; i < at + length; i++) s += String.fromCharCode(head[i]!);
  return s;
}

function u32be(head: Uint8Array, at: number): number {
  return ((head[at]! << 24) | (head[at + 1]! << 16) | (head[at + 2]! << 8) | head[at + 3]!) >>> 0;
}

function u32le(head: Uint8Array, at: number): number {
  return (head[at]! | (head[at + 1]! << 8) | (head[at + 2]! << 16) | (head[at + 3]! << 24)) >>> 0;
}

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1', 'miaf']);

/** The ISO-BMFF `ftyp` box: major brand plus the compatible brands that fit in `head`. */
function ftypBrands(head: Uint8Array): string[] | null {
  if (head.length < 16 || ascii(head, 4, 4) !== 'ftyp') return null;
  const size = u32be(head, 0);
  const end = Math.min(size >= 16 ? size : 16, head.length);
  const brands = [ascii(head, 8, 4)];
  for (let at = 16; at + 4 <= end; at += 4) brands.push(ascii(head, at, 4));
  return brands;
}

/** Skip a UTF-8 BOM and leading whitespace; return the following text (latin1, lower-cased). */
function leadingMarkup(head: Uint8Array): string {
  let at = startsWith(head, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (at < head.length && (head[at] === 0x20 || head[at] === 0x09 || head[at] === 0x0a || head[at] === 0x0d)) at++;
  return ascii(head, at, head.length - at).toLowerCase();
}

/**
 * Sniff the container from magic bytes: 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'avif' | 'heif' | 'bmp' | 'ico' |
 * 'jxl' | 'jp2' | 'psd' | 'qoi' | 'exr' | 'hdr' | 'pnm' | 'svg', or null when the bytes are not a known image.
 * Pass at least the first 32 bytes (SNIFF_BYTES for ISO-BMFF brand lists and SVG behind an XML prologue).
 */
export function sniffFormat(head: Uint8Array): string | null {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  const a6 = ascii(head, 0, 6);
  if (a6 === 'GIF87a' || a6 === 'GIF89a') return 'gif';
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 4) === 'WEBP') return 'webp';
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(head, [0x49, 0x49, 0x2b, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff'; // BigTIFF
  const brands = ftypBrands(head);
  if (brands) {
    if (AVIF_BRANDS.has(brands[0]!)) return 'avif';
    if (HEIF_BRANDS.has(brands[0]!)) return brands.some((b) => AVIF_BRANDS.has(b)) ? 'avif' : 'heif';
    return null; // mp4, mov, 3gp, camera raws...: describeContent names them
  }
  if (startsWith(head, [0xff, 0x0a]) || startsWith(head, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a])) return 'jxl';
  if (startsWith(head, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]) || startsWith(head, [0xff, 0x4f, 0xff, 0x51])) return 'jp2';
  if (ascii(head, 0, 2) === 'BM' && head.length >= 18 && [12, 40, 52, 56, 64, 108, 124].includes(u32le(head, 14))) return 'bmp';
  if ((startsWith(head, [0, 0, 1, 0]) || startsWith(head, [0, 0, 2, 0])) && head.length >= 6 && (head[4]! | (head[5]! << 8)) > 0) return 'ico';
  if (ascii(head, 0, 4) === '8BPS') return 'psd';
  if (ascii(head, 0, 4) === 'qoif') return 'qoi';
  if (startsWith(head, [0x76, 0x2f, 0x31, 0x01])) return 'exr';
  if (ascii(head, 0, 10) === '#?RADIANCE' || ascii(head, 0, 6) === '#?RGBE') return 'hdr';
  if (head.length >= 3 && head[0] === 0x50 && /^[1-7fF]$/.test(String.fromCharCode(head[1]!)) && /\s/.test(String.fromCharCode(head[2]!))) return 'pnm';
  const markup = leadingMarkup(head);
  if (markup.startsWith('<svg') || ((markup.startsWith('<?xml') || markup.startsWith('<!--') || markup.startsWith('<!doctype svg')) && markup.includes('<svg'))) {
    return 'svg';
  }
  return null;
}

function isMostlyText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  let printable = 0;
  for (const b of head) {
    if (b === 0) return false;
    if (b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b !== 0x7f)) printable++;
  }
  return printable / head.length > 0.95;
}

/** What a non-image input looks like, for "not an image: found ..." messages. */
export function describeContent(head: Uint8Array): string {
  if (head.length === 0) return 'no bytes';
  if (ascii(head, 0, 5) === '%PDF-') return 'a PDF document';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return 'a ZIP archive';
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip data';
  const brands = ftypBrands(head);
  if (brands) return `an ISO media file (brand "${brands[0]!.trim()}", e.g. a video)`;
  if (ascii(head, 0, 4) === 'RIFF') return `a RIFF "${ascii(head, 8, 4).trim()}" file`;
  const markup = leadingMarkup(head);
  if (markup.startsWith('<!doctype html') || markup.startsWith('<html')) return 'an HTML document';
  if (isMostlyText(head)) {
    const text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('utf8').replace(/\uFFFD+$/, '');
    const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    return `text ${JSON.stringify(shown)}`;
  }
  const hex = Array.from(head.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `binary data starting ${hex}${head.length > 16 ? ' …' : ''}`;
}
