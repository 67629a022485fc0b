/**
 * Fault injection for tests: make the next N requests matching a method and path fail with a
 * status (503, 429, …) and/or answer late. Faults are checked in the order they were added; the
 * first one that matches and has uses left applies. Admin requests (`/_admin/…`) never match,
 * so a test can always clear what it injected.
 */
import { badRequest } from './api-errors.js';

/** A fault as callers describe it. */
export interface FaultSpec {
  /** HTTP method to match (any when absent); case-insensitive. */
  method?: string;
  /**
   * Matched against the raw request target (percent-encoded path plus query string): a RegExp
   * is tested, a string must occur in it. Any path when absent.
   */
  path?: RegExp | string;
  /** Status to answer with, in Google's error JSON. Absent: only `latencyMs` applies. */
  status?: number;
  /** How many matching requests this fault affects (default 1). */
  times?: number;
  /** Delay before answering (or before handling, when there is no status). */
  latencyMs?: number;
}

interface ActiveFault {
  method: string | undefined;
  path: RegExp | string | undefined;
  status: number | undefined;
  latencyMs: number;
  remaining: number;
}

/** What applies to one request. */
export interface FaultDecision {
  status: number | undefined;
  latencyMs: number;
}

/** The injected faults of one server. */
export class FaultInjector {
  private faults: ActiveFault[] = [];

  /** Adds a fault; throws a TypeError for nonsense (no effect, bad status, bad count). */
  add(spec: FaultSpec): void {
    const times = spec.times ?? 1;
    if (!Number.isInteger(times) || times < 1)
      throw new TypeError(`Fault times must be a positive whole number, got ${spec.times}`);
    if (spec.status !== undefined && (!Number.isInteger(spec.status) || spec.status < 400 || spec.status > 599)) {
      throw new TypeError(`Fault status must be 400-599, got ${spec.status}`);
    }
    const latencyMs = spec.latencyMs ?? 0;
    if (!Number.isFinite(latencyMs) || latencyMs < 0)
      throw new TypeError(`Fault latencyMs must be >= 0, got ${spec.latencyMs}`);
    if (spec.status === undefined && latencyMs === 0)
      throw new TypeError('A fault needs a status, a latencyMs, or both');
    this.faults.push({
      method: spec.method?.toUpperCase(),
      path: spec.path,
      status: spec.status,
      latencyMs,
      remaining: times,
    });
  }

  /** Removes every fault. */
  clear(): void {
    this.faults = [];
  }

  /** How many faults still have uses left. */
  get active(): number {
    return this.faults.length;
  }

  /** Consumes one use of the first fault matching the request, if any. */
  take(method: string, target: string): FaultDecision | undefined {
    if (target.startsWith('/_admin/')) return undefined;
    const fault = this.faults.find(
      (f) =>
        (f.method === undefined || f.method === method.toUpperCase()) &&
        (f.path === undefined || (typeof f.path === 'string' ? target.includes(f.path) : matches(f.path, target))),
    );
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining === 0) this.faults = this.faults.filter((f) => f !== fault);
    return { status: fault.status, latencyMs: fault.latencyMs };
  }
}

function matches(pattern: RegExp, target: string): boolean {
  // A global or sticky RegExp keeps state between test() calls; reset it so matching is pure.
  pattern.lastIndex = 0;
  return pattern.test(target);
}

/**
 * Reads a fault from the admin endpoint's JSON: `path` is a substring, `pathPattern` a regular
 * expression source (JSON cannot carry a RegExp).
 */
export function faultFromJson(body: unknown): FaultSpec {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('A fault must be a JSON object');
  const input = body as Record<string, unknown>;
  const spec: FaultSpec = {};
  const optionalString = (key: string): string | undefined => {
    const value = input[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw badRequest(`Fault ${key} must be a string`);
    return value;
  };
  const optionalNumber = (key: string): number | undefined => {
    const value = input[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number') throw badRequest(`Fault ${key} must be a number`);
    return value;
  };
  const method = optionalString('method');
  const path = optionalString('path');
  const pattern = optionalString('pathPattern');
  if (method !== undefined) spec.method = method;
  if (path !== undefined && pattern !== undefined)
    throw badRequest('Give a fault either path or pathPattern, not both');
  if (path !== undefined) spec.path = path;
  if (pattern !== undefined) {
    try {
      spec.path = new RegExp(pattern);
    } catch {
      throw badRequest(`Fault pathPattern is not a valid regular expression: ${pattern}`);
    }
  }
  const status = optionalNumber('status');
  const times = optionalNumber('times');
  const latencyMs = optionalNumber('latencyMs');
  if (status !== undefined) spec.status = status;
  if (times !== undefined) spec.times = times;
  if (latencyMs !== undefined) spec.latencyMs = latencyMs;
  return spec;
}
