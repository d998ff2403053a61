/**
 * The daemon's REST API, typed from openapi/vmctl.json (schema.ts, generated), over
 * node:http — on the daemon's Unix socket or on its TCP listener with a bearer token — and
 * its WebSockets through `ws`. Error answers become ApiProblemError; a daemon that cannot be
 * reached becomes ConnectError, with a hint at the usual cause.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type WebSocket from 'ws';
import { ApiProblemError, CliError, ConnectError, type Problem } from '../errors.js';
import { describeConnection, type Connection } from './connection.js';
import type { paths } from './schema.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
export type ApiPath = keyof paths;
/** The methods a path has (the generated type marks the others `never`). */
export type MethodOf<P extends ApiPath> = { [M in Method]: paths[P][M] extends undefined ? never : M }[Method];
type Op<P extends ApiPath, M extends MethodOf<P>> = NonNullable<paths[P][M]>;

type PathParams<O> = O extends { parameters: { path: infer X } } ? (X extends undefined ? never : X) : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
type HeadersOf<O> = O extends { parameters: { header?: infer H } } ? H : never;
type BodyOf<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : undefined;
type SuccessStatus = 200 | 201 | 202 | 204;
/** The JSON body of any 2xx answer of the operation. */
export type SuccessOf<O> = O extends { responses: infer R } ? { [S in keyof R & SuccessStatus]: JsonOf<R[S]> }[keyof R & SuccessStatus] : never;

export type RequestArgs<O> = ([PathParams<O>] extends [never] ? { params?: undefined } : { params: PathParams<O> }) & {
  query?: QueryOf<O>;
  headers?: HeadersOf<O>;
  body?: BodyOf<O>;
};

export interface ApiResponse<T> {
  status: number;
  headers: IncomingMessage['headers'];
  data: T;
}

/** Fills `{name}` segments of an OpenAPI path template. */
export function fillPath(template: string, params: Record<string, string | number> = {}, query: Record<string, unknown> = {}): string {
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) => {
    if (params[k] === undefined) throw new CliError(`internal: no value for {${k}} in ${template}`);
    return encodeURIComponent(String(params[k]));
  });
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

function connectHint(c: Connection, err: NodeJS.ErrnoException): string {
  const where = describeConnection(c);
  switch (err.code) {
    case 'ENOENT':
      return `cannot connect to vmctld: no socket at ${where} (is vmctld running? --socket or VMCTL_SOCKET name another)`;
    case 'ECONNREFUSED':
      return `cannot connect to vmctld at ${where}: connection refused (is vmctld running?)`;
    case 'EACCES':
    case 'EPERM':
      return `cannot connect to vmctld at ${where}: permission denied (the socket is for root and vmctld's --socket-group)`;
    default:
      return `cannot connect to vmctld at ${where}: ${err.code ?? err.message}`;
  }
}

function isProblem(x: unknown): x is Problem {
  return typeof x === 'object' && x !== null && typeof (x as Problem).code === 'string' && typeof (x as Problem).title === 'string';
}

/** An error answer → the exception vmctl reports. */
function answerError(status: number, contentType: string | undefined, text: string): CliError {
  if (contentType?.startsWith('application/problem+json') || contentType?.startsWith('application/json')) {
    try {
      const body: unknown = JSON.parse(text);
      if (isProblem(body)) return new ApiProblemError(status, body);
    } catch {
      // not JSON after all: reported below
    }
  }
  const problem: Problem = { type: 'about:blank', title: `HTTP ${status}`, status, detail: text.slice(0, 500) || 'the server answered with no body', code: status === 401 ? 'UNAUTHORIZED' : 'INTERNAL' };
  return new ApiProblemError(status, problem);
}

export class ApiClient {
  constructor(readonly connection: Connection) {}

  private requestOptions(method: string, path: string, headers: Record<string, string>): RequestOptions {
    const c = this.connection;
    if (c.kind === 'unix') return { socketPath: c.socket, method, path, headers: { host: 'localhost', ...headers } };
    return {
      protocol: c.url.protocol,
      hostname: c.url.hostname.replace(/^\[|\]$/g, ''),
      port: c.url.port || (c.url.protocol === 'https:' ? 443 : 80),
      method,
      path: c.url.pathname.replace(/\/$/, '') + path,
      headers: { ...(c.token ? { authorization: `Bearer ${c.token}` } : {}), ...headers },
    };
  }

  /** One request; resolves with the decoded 2xx body, rejects with CliError otherwise. */
  async request<P extends ApiPath, M extends MethodOf<P>>(method: M, path: P, args: RequestArgs<Op<P, M>> = {} as RequestArgs<Op<P, M>>): Promise<ApiResponse<SuccessOf<Op<P, M>>>> {
    const a = args as { params?: Record<string, string>; query?: Record<string, unknown>; headers?: Record<string, string>; body?: unknown };
    const url = fillPath(path, a.params, a.query ?? {});
    const data = a.body === undefined ? undefined : JSON.stringify(a.body);
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...(a.headers ?? {}) };
    if (data !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(data));
    }
    const opts = this.requestOptions(method.toUpperCase(), url, headers);
    const send = this.connection.kind === 'tcp' && this.connection.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new ConnectError(`the connection to vmctld broke: ${err.message}`)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(answerError(status, res.headers['content-type'], text));
            return;
          }
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            reject(new CliError(`vmctld answered ${status} with a body that is not JSON`));
            return;
          }
          resolve({ status, headers: res.headers, data: body as SuccessOf<Op<P, M>> });
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => reject(new ConnectError(connectHint(this.connection, err))));
      req.end(data);
    });
  }

  /**
   * Opens one of the API's WebSockets. Resolves once it is open; rejects with the problem the
   * daemon answered instead of upgrading (409 DOMAIN_NOT_RUNNING for a console, say).
   * `onMessage` is attached before the connection opens: the daemon sends its replay at once,
   * often in the same read as the upgrade answer, before a listener added later would hear it.
   */
  async websocket(path: string, onMessage: (data: Buffer) => void): Promise<WebSocket> {
    // loaded when needed: only console and events speak WebSocket
    const { default: WebSocket } = await import('ws');
    const c = this.connection;
    const ws =
      c.kind === 'unix'
        ? new WebSocket(`ws+unix://${c.socket}:${path}`)
        : new WebSocket(`${c.url.protocol === 'https:' ? 'wss' : 'ws'}://${c.url.host}${c.url.pathname.replace(/\/$/, '')}${path}`, {
            headers: c.token ? { authorization: `Bearer ${c.token}` } : {},
          });
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => onMessage(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)));
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(err.code ? new ConnectError(connectHint(c, err)) : new CliError(`WebSocket ${path}: ${err.message}`));
      ws.once('open', () => {
        ws.off('error', onError);
        resolve(ws);
      });
      ws.once('error', onError);
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => {
          ws.off('error', onError);
          ws.on('error', () => {});
          ws.terminate();
          reject(answerError(res.statusCode ?? 0, res.headers['content-type'], Buffer.concat(chunks).toString('utf8')));
        });
      });
    });
  }
}
