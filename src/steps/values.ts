/**
 * Pure: the workflow's `chart-values` parameter (a JSON object: route, port, env, resources,
 * replicas, ...) read into the inputs of renderServiceValues, with every problem named
 * `--values.<key>`.
 */
import { InputError, type Issue } from '../errors.js';
import { ROUTE_KINDS, renderServiceValues, type Resources, type RouteInput, type ServiceValuesInput } from '../chart/values.js';

export type ChartSettings = Pick<ServiceValuesInput, 'port' | 'route' | 'env' | 'envFrom' | 'resources' | 'replicas' | 'imagePullSecrets'>;

export const CHART_VALUE_KEYS = ['port', 'route', 'env', 'envFrom', 'resources', 'replicas', 'imagePullSecrets'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Reads the JSON object of `--<flag>`; throws one InputError listing every problem. `route`
 * may be a path (`"/shop"`, no route object: kind none) or a route object.
 */
export function parseChartSettings(raw: Record<string, unknown>, flag = 'values'): Partial<ChartSettings> {
  const issues: Issue[] = [];
  const at = (k: string) => `--${flag}.${k}`;
  const out: Partial<ChartSettings> = {};
  for (const [k, v] of Object.entries(raw)) {
    switch (k) {
      case 'port':
        if (typeof v === 'number' && Number.isInteger(v)) out.port = v;
        else issues.push({ path: at(k), message: 'must be an integer port' });
        break;
      case 'route':
        if (typeof v === 'string') out.route = { kind: 'none', path: v };
        else if (isObject(v) && typeof v.path === 'string' && (ROUTE_KINDS as readonly string[]).includes(String(v.kind ?? 'none'))) {
          out.route = { ...(v as unknown as RouteInput), kind: (v.kind ?? 'none') as RouteInput['kind'] };
        } else issues.push({ path: at(k), message: `must be a path ("/shop") or {kind: ${ROUTE_KINDS.join('|')}, path, ...}` });
        break;
      case 'env':
        if (isObject(v) && Object.values(v).every((x) => typeof x === 'string')) out.env = v as Record<string, string>;
        else issues.push({ path: at(k), message: 'must map variable names to strings' });
        break;
      case 'envFrom':
      case 'imagePullSecrets':
        if (isStringArray(v)) out[k] = v;
        else issues.push({ path: at(k), message: 'must be a list of Secret names' });
        break;
      case 'resources':
        if (isObject(v) && Object.keys(v).every((g) => g === 'requests' || g === 'limits') && Object.values(v).every(isObject))
          out.resources = v as Resources;
        else issues.push({ path: at(k), message: 'must be {requests: {cpu, memory}, limits: {cpu, memory}}' });
        break;
      case 'replicas':
        if (typeof v === 'number' && Number.isInteger(v)) out.replicas = v;
        else issues.push({ path: at(k), message: 'must be an integer' });
        break;
      default:
        issues.push({ path: at(k), message: `unknown key; allowed: ${CHART_VALUE_KEYS.join(', ')}` });
    }
  }
  if (issues.length) throw new InputError(`--${flag} is invalid`, issues);
  return out;
}

/**
 * renderServiceValues, with the problems of the settings named `--values.<path>` and those of
 * the references named by their flags.
 */
export function renderStepValues(input: ServiceValuesInput, flagOf: Record<string, string> = {}): ReturnType<typeof renderServiceValues> {
  try {
    return renderServiceValues(input);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    const issues = e.issues.map((i) => {
      const top = i.path.split('.')[0] ?? '';
      if (flagOf[top]) return { path: `--${flagOf[top]}${i.path.slice(top.length)}`, message: i.message };
      if ((CHART_VALUE_KEYS as readonly string[]).includes(top)) return { path: `--values.${i.path}`, message: i.message };
      return i;
    });
    throw new InputError('invalid service chart values', issues);
  }
}
