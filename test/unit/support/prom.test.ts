/**
 * The Prometheus text parser the metrics tests rely on (test/support/prom.ts): it must accept the
 * format and refuse what is not, or the metrics tests would prove nothing.
 */
import { describe, expect, it } from 'vitest';
import { parseProm, sample } from '../../support/prom.js';

const GOOD = `# HELP up_total Things, with a \\\\ backslash and a \\n newline.
# TYPE up_total counter
up_total{a="x",b="say \\"hi\\"\\n"} 3
up_total{a="y"} 0
# a comment
# TYPE temp gauge
temp -1.5e-3
temp{room="b"} NaN
# TYPE rtt histogram
rtt_bucket{kind="g",le="0.1"} 1
rtt_bucket{kind="g",le="1"} 4
rtt_bucket{kind="g",le="+Inf"} 5
rtt_sum{kind="g"} 2.5
rtt_count{kind="g"} 5
`;

describe('parseProm', () => {
  it('parses HELP, TYPE, labels with escapes, special values and histograms', () => {
    const f = parseProm(GOOD);
    expect([...f.keys()]).toEqual(['up_total', 'temp', 'rtt']);
    expect(f.get('up_total')).toMatchObject({ type: 'counter', help: 'Things, with a \\ backslash and a \n newline.' });
    expect(f.get('up_total')!.samples[0]).toEqual({ name: 'up_total', labels: { a: 'x', b: 'say "hi"\n' }, value: 3 });
    expect(f.get('temp')!.samples[0]).toEqual({ name: 'temp', labels: {}, value: -0.0015 });
    expect(sample(f, 'temp', { room: 'b' })).toBeNaN();
    expect(sample(f, 'rtt_count', { kind: 'g' })).toBe(5);
    expect(sample(f, 'rtt_bucket', { le: '+Inf' })).toBe(5);
    expect(() => sample(f, 'up_total')).toThrow(/2 samples/);
  });

  it.each([
    ['a sample before its TYPE', 'x 1\n'],
    ['a bad value', '# TYPE x gauge\nx one\n'],
    ['an unquoted label', '# TYPE x gauge\nx{a=b} 1\n'],
    ['labels without a comma', '# TYPE x gauge\nx{a="1" b="2"} 1\n'],
    ['a repeated label', '# TYPE x gauge\nx{a="1",a="2"} 1\n'],
    ['an unknown type', '# TYPE x thing\nx 1\n'],
    ['a second TYPE', '# TYPE x gauge\n# TYPE x gauge\n'],
    ['a negative counter', '# TYPE x counter\nx -1\n'],
    ['garbage', '# TYPE x gauge\nx 1 2 3\n'],
    ['buckets not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n'],
    ['+Inf bucket not equal to count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'],
    ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_sum 1\nh_count 2\n'],
  ])('refuses %s', (_what, text) => {
    expect(() => parseProm(text)).toThrow();
  });
});
