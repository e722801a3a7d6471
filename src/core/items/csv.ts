/**
 * A small RFC 4180 reader for manifests: comma-separated, fields optionally in double quotes ("" inside quotes is
 * one quote; quoted fields may hold commas and line breaks), CRLF or LF line ends. Each record comes with the line
 * it starts on, so problems can name it.
 */

export interface CsvRecord {
  line: number;
  fields: string[];
}

/** All records of `text`; throws an Error naming the line of an unterminated quote or a stray quote. */
export function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let start = 1;
  let quoted = false;
  let afterQuote = false;
  let i = 0;
  const endField = () => {
    fields.push(field);
    field = '';
    afterQuote = false;
  };
  const endRecord = () => {
    endField();
    // A blank line is no record.
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: start, fields });
    fields = [];
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        afterQuote = true;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      i++;
      continue;
    }
    if (c === ',') endField();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else if (c === '"') {
      if (field !== '' || afterQuote) throw new Error(`line ${line}: a quote inside an unquoted field (quote the whole field and double inner quotes)`);
      quoted = true;
    } else {
      if (afterQuote) throw new Error(`line ${line}: text after a closing quote`);
      field += c;
    }
    i++;
  }
  if (quoted) throw new Error(`line ${start}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0) endRecord();
  return records;
}
