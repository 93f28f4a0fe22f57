// CSV as a stream of bytes: a header row naming the columns, then one row per
// sample; the label column holds the class, every other column one input
// element in column order. Fields are short numbers, so each is collected in
// a small fixed buffer and converted when its comma or newline arrives.
import { checkLabel, invalid, quantizeUnit, type Scale } from './common.js';

const MAX_HEADER = 1 << 20;
const MAX_FIELD = 64;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

export interface CsvOptions {
  part: string;
  labelColumn: string;
  /** Input elements a row must hold (the columns other than the label). */
  sampleBytes: number;
  classes: number;
  scale: Scale;
}

const isSpace = (b: number) => b === 0x20 || b === 0x09;
const UNIT_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class CsvStream {
  /** Column names once the header row is read. */
  columns: string[] | null = null;
  /** Data rows parsed. */
  rows = 0;
  private headerBytes: Buffer[] = [];
  private headerLen = 0;
  private labelIndex = -1;
  private line = 1;
  private col = 0;
  private lineHasContent = false;
  private readonly field = new Uint8Array(MAX_FIELD);
  private fieldLen = 0;
  private readonly sample: Uint8Array;
  private pixel = 0;
  private label = 0;

  constructor(
    private readonly opts: CsvOptions,
    /** One row: its elements (a view valid only during the call) and label. */
    private readonly onSample: (x: Uint8Array, label: number) => void,
  ) {
    this.sample = new Uint8Array(opts.sampleBytes);
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    if (this.columns === null) {
      const nl = chunk.indexOf(LF);
      const end = nl < 0 ? chunk.length : nl;
      this.headerLen += end;
      if (this.headerLen > MAX_HEADER) throw invalid(this.opts.part, `header row is longer than ${MAX_HEADER} bytes`, { line: 1 });
      this.headerBytes.push(Buffer.from(chunk.subarray(0, end)));
      if (nl < 0) return;
      this.readHeader();
      this.line = 2;
      i = nl + 1;
    }
    for (; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === COMMA) {
        this.lineHasContent = true;
        this.endField();
      } else if (b === LF) {
        if (this.lineHasContent || this.fieldLen > 0) {
          this.endField();
          this.endRow();
        }
        this.line++;
        this.lineHasContent = false;
      } else if (b === CR || (isSpace(b) && this.fieldLen === 0)) {
        // a CRLF line end, or space before a value
      } else {
        if (this.fieldLen === MAX_FIELD) {
          throw invalid(this.opts.part, `${this.where()}: a value longer than ${MAX_FIELD} characters`, this.details());
        }
        this.field[this.fieldLen++] = b;
        this.lineHasContent = true;
      }
    }
  }

  end(): void {
    if (this.columns === null) {
      if (this.headerLen === 0) throw invalid(this.opts.part, 'empty CSV (no header row)', { line: 1 });
      this.readHeader();
      return;
    }
    if (this.lineHasContent || this.fieldLen > 0) {
      this.endField();
      this.endRow();
    }
  }

  private readHeader(): void {
    let text = Buffer.concat(this.headerBytes).toString('utf8');
    this.headerBytes = [];
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const columns = text
      .replace(/\r$/, '')
      .split(',')
      .map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    const labelIndex = columns.indexOf(this.opts.labelColumn);
    if (labelIndex < 0) {
      throw invalid(this.opts.part, `no column '${this.opts.labelColumn}' in the header row (columns: ${columns.slice(0, 8).join(', ')}${columns.length > 8 ? ', …' : ''}); name the label column with labelColumn`, {
        line: 1,
        labelColumn: this.opts.labelColumn,
      });
    }
    if (columns.length - 1 !== this.opts.sampleBytes) {
      throw invalid(this.opts.part, `the header has ${columns.length - 1} input columns besides '${this.opts.labelColumn}'; shape needs ${this.opts.sampleBytes}`, {
        line: 1,
        columns: columns.length,
        sampleBytes: this.opts.sampleBytes,
      });
    }
    this.columns = columns;
    this.labelIndex = labelIndex;
  }

  private where(): string {
    const name = this.columns?.[this.col];
    return `row ${this.rows + 1} (line ${this.line}), column ${this.col + 1}${name !== undefined ? ` '${name}'` : ''}`;
  }

  private details(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { row: this.rows + 1, line: this.line, column: this.col + 1, columnName: this.columns?.[this.col] ?? null, ...extra };
  }

  private endField(): void {
    const columns = this.columns!;
    if (this.col >= columns.length) {
      throw invalid(this.opts.part, `row ${this.rows + 1} (line ${this.line}) has more than the header's ${columns.length} columns`, this.details({ columns: columns.length }));
    }
    let len = this.fieldLen;
    while (len > 0 && isSpace(this.field[len - 1])) len--;
    if (this.col === this.labelIndex) this.label = this.readLabel(len);
    else this.sample[this.pixel++] = this.readElement(len);
    this.fieldLen = 0;
    this.col++;
  }

  private endRow(): void {
    const columns = this.columns!;
    if (this.col !== columns.length) {
      throw invalid(this.opts.part, `row ${this.rows + 1} (line ${this.line}) has ${this.col} columns; the header has ${columns.length}`, {
        row: this.rows + 1,
        line: this.line,
        columns: this.col,
        expected: columns.length,
      });
    }
    this.onSample(this.sample, this.label);
    this.rows++;
    this.col = 0;
    this.pixel = 0;
  }

  /** Digits only: the value, or -1. */
  private digits(len: number): number {
    if (len === 0 || len > 9) return -1;
    let v = 0;
    for (let k = 0; k < len; k++) {
      const d = this.field[k] - 0x30;
      if (d < 0 || d > 9) return -1;
      v = v * 10 + d;
    }
    return v;
  }

  private text(len: number): string {
    return Buffer.from(this.field.subarray(0, len)).toString('latin1');
  }

  private readLabel(len: number): number {
    const v = this.digits(len);
    if (v < 0) {
      throw invalid(this.opts.part, `${this.where()}: label ${JSON.stringify(this.text(len))} is not a class number 0..${this.opts.classes - 1}`, this.details({ value: this.text(len) }));
    }
    return checkLabel(this.opts.part, v, this.opts.classes, this.rows, this.details());
  }

  private readElement(len: number): number {
    if (this.opts.scale === 'byte') {
      const v = this.digits(len);
      if (v >= 0 && v <= 255) return v;
      const t = this.text(len);
      const hint =
        v > 255
          ? 'is above 255'
          : UNIT_NUMBER.test(t)
            ? 'is not an integer 0..255 (for values in [0,1] send scale=unit)'
            : 'is not a number';
      throw invalid(this.opts.part, `${this.where()}: ${JSON.stringify(t)} ${hint}`, this.details({ value: t }));
    }
    const t = this.text(len);
    const v = UNIT_NUMBER.test(t) ? Number(t) : Number.NaN;
    if (!Number.isFinite(v)) throw invalid(this.opts.part, `${this.where()}: ${JSON.stringify(t)} is not a number`, this.details({ value: t }));
    return quantizeUnit(v);
  }
}
