/**
 * A small structured logger: one JSON object per line on stderr (journald keeps it), in
 * pino's shape so that fastify takes it as its `loggerInstance` and the supervisor shares it.
 */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LevelName = keyof typeof LEVELS;
type Method = Exclude<LevelName, 'silent'>;

export interface JsonLogger {
  level: LevelName;
  trace(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  fatal(obj: unknown, msg?: string): void;
  silent(obj: unknown, msg?: string): void;
  child(bindings: Record<string, unknown>): JsonLogger;
}

function serialise(v: unknown): unknown {
  if (v instanceof Error) return { type: v.name, message: v.message, stack: v.stack, ...(('code' in v) ? { code: (v as { code: unknown }).code } : {}) };
  return v;
}

export function createLogger(level: LevelName = 'info', bindings: Record<string, unknown> = {}, write: (line: string) => void = (l) => process.stderr.write(l)): JsonLogger {
  const threshold = LEVELS[level];
  const emit = (name: Method) => (obj: unknown, msg?: string) => {
    if (LEVELS[name] < threshold) return;
    const fields: Record<string, unknown> = typeof obj === 'string' ? { msg: obj } : { ...(obj as object), ...(msg !== undefined ? { msg } : {}) };
    for (const k of Object.keys(fields)) fields[k] = serialise(fields[k]);
    try {
      write(`${JSON.stringify({ level: LEVELS[name], time: Date.now(), ...bindings, ...fields })}\n`);
    } catch {
      // a log line that cannot be written must not take the daemon down
    }
  };
  return {
    level,
    trace: emit('trace'),
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    fatal: emit('fatal'),
    silent: () => {},
    child: (more) => createLogger(level, { ...bindings, ...more }, write),
  };
}

export const silentLogger = (): JsonLogger => createLogger('silent');
