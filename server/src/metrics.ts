// Prometheus text exposition (format 0.0.4) for the few series the daemon
// keeps: counters, gauges and one histogram kind, labelled.

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

interface Series {
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Map<string, number>;
  buckets?: number[];
  hist?: Map<string, { counts: number[]; sum: number; count: number }>;
}

export class MetricsRegistry {
  private readonly series = new Map<string, Series>();
  /** Gauges computed at scrape time. */
  private readonly collectors: (() => void)[] = [];

  counter(name: string, help: string): (labels: Labels, by?: number) => void {
    const s = this.define(name, help, 'counter');
    return (labels, by = 1) => {
      const k = labelKey(labels);
      s.values.set(k, (s.values.get(k) ?? 0) + by);
    };
  }

  gauge(name: string, help: string): (labels: Labels, value: number) => void {
    const s = this.define(name, help, 'gauge');
    return (labels, value) => {
      s.values.set(labelKey(labels), value);
    };
  }

  histogram(name: string, help: string, buckets: number[]): (labels: Labels, value: number) => void {
    const s = this.define(name, help, 'histogram');
    s.buckets = [...buckets].sort((a, b) => a - b);
    s.hist = new Map();
    return (labels, value) => {
      const k = labelKey(labels);
      let h = s.hist!.get(k);
      if (!h) {
        h = { counts: new Array(s.buckets!.length).fill(0), sum: 0, count: 0 };
        s.hist!.set(k, h);
      }
      for (let i = 0; i < s.buckets!.length; i++) if (value <= s.buckets![i]) h.counts[i]++;
      h.sum += value;
      h.count++;
    };
  }

  /** Runs before every scrape, to set gauges from live state. */
  collect(fn: () => void): void {
    this.collectors.push(fn);
  }

  resetGauge(name: string): void {
    this.series.get(name)?.values.clear();
  }

  private define(name: string, help: string, type: Series['type']): Series {
    let s = this.series.get(name);
    if (!s) {
      s = { help, type, values: new Map() };
      this.series.set(name, s);
    }
    return s;
  }

  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const [name, s] of this.series) {
      out.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      if (s.type === 'histogram') {
        for (const [k, h] of s.hist!) {
          const sep = k ? ',' : '';
          s.buckets!.forEach((b, i) => out.push(`${name}_bucket{${k}${sep}le="${b}"} ${h.counts[i]}`));
          out.push(`${name}_bucket{${k}${sep}le="+Inf"} ${h.count}`);
          out.push(`${name}_sum${k ? `{${k}}` : ''} ${h.sum}`, `${name}_count${k ? `{${k}}` : ''} ${h.count}`);
        }
      } else {
        for (const [k, v] of s.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
