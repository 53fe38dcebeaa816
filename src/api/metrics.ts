/** A few Prometheus metrics in the text exposition format, kept by hand (no library needed). */

type Labels = Record<string, string>;

function key(labels: Labels): string {
  return Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

export class Metrics {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly help = new Map<string, string>();
  private readonly durations = new Map<string, { sum: number; count: number }>();

  inc(name: string, labels: Labels, help: string, by = 1): void {
    this.help.set(name, help);
    const m = this.counters.get(name) ?? new Map<string, number>();
    const k = key(labels);
    m.set(k, (m.get(k) ?? 0) + by);
    this.counters.set(name, m);
  }

  observe(name: string, labels: Labels, seconds: number): void {
    const k = `${name}{${key(labels)}}`;
    const d = this.durations.get(k) ?? { sum: 0, count: 0 };
    d.sum += seconds;
    d.count += 1;
    this.durations.set(k, d);
  }

  render(gauges: Array<{ name: string; help: string; values: Array<[Labels, number]> }> = []): string {
    const out: string[] = [];
    for (const [name, m] of this.counters) {
      out.push(`# HELP ${name} ${this.help.get(name) ?? name}`, `# TYPE ${name} counter`);
      for (const [k, v] of m) out.push(`${name}{${k}} ${v}`);
    }
    out.push(
      '# HELP svcbuild_http_request_duration_seconds Time to answer HTTP requests',
      '# TYPE svcbuild_http_request_duration_seconds summary',
    );
    for (const [k, d] of this.durations) {
      const brace = k.indexOf('{');
      const labels = k.slice(brace);
      out.push(
        `svcbuild_http_request_duration_seconds_sum${labels} ${d.sum}`,
        `svcbuild_http_request_duration_seconds_count${labels} ${d.count}`,
      );
    }
    for (const g of gauges) {
      out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
      for (const [l, v] of g.values) out.push(`${g.name}{${key(l)}} ${v}`);
    }
    return out.join('\n') + '\n';
  }
}
