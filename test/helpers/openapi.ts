/**
 * Reads docs/openapi.yaml and turns its response examples into the cases
 * the conformance test sends: each example's `x-request` says how to get
 * that answer from a real server (see the document's description).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { REPO_ROOT } from './server-process.js'

/** The parsed document, aliases expanded. */
export type OpenApiDocument = Record<string, any>

/** Reads docs/openapi.yaml as the server's build does. */
export function readOpenApiYaml(): OpenApiDocument {
  const text = readFileSync(join(REPO_ROOT, 'docs/openapi.yaml'), 'utf8')
  return parse(text, { maxAliasCount: -1 }) as OpenApiDocument
}

/** A request made before the example's own, or the example's own. */
export interface ExampleStep {
  readonly method?: string
  /** A literal path (steps of `before` only). */
  readonly path?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly json?: unknown
  readonly form?: Readonly<Record<string, string>>
  readonly raw?: string
}

/** The `x-request` of a response example. */
export interface ExampleRequest extends ExampleStep {
  readonly pathParams?: Readonly<Record<string, string>>
  readonly query?: Readonly<Record<string, string>>
  readonly bodyBytes?: number
  readonly server?: Readonly<Record<string, string>>
  readonly before?: readonly ExampleStep[]
  readonly repeat?: number
  readonly concurrent?: number
  readonly stall?: boolean
  readonly until?: boolean
  readonly during?: 'shutdown'
}

/** One documented answer and the request that gets it. */
export interface ConformanceCase {
  /** `GET /api/messages/{id} 404 unknown`, for test names. */
  readonly title: string
  readonly method: string
  readonly template: string
  readonly status: string
  readonly mediaType: string
  /** JSON pointer of the resolved response object. */
  readonly responsePointer: string
  readonly response: Record<string, any>
  readonly example: Record<string, any>
  readonly request: ExampleRequest
  /** Whether the operation takes a body. */
  readonly hasBody: boolean
  /** The operation's first request media type. */
  readonly bodyType?: string
  /** Whether the example has an `x-request` at all. */
  readonly hasRequest: boolean
  /** The documented example of each path parameter. */
  readonly pathExamples: Readonly<Record<string, string>>
}

/** What a `$ref` resolves to, and where. */
export interface Resolved {
  readonly value: Record<string, any>
  readonly pointer: string
}

/** Follows local `$ref`s from `pointer` until a plain object. */
export function resolve(doc: OpenApiDocument, pointer: string): Resolved {
  let current = { value: at(doc, pointer), pointer }
  for (let hops = 0; typeof current.value?.$ref === 'string'; hops += 1) {
    if (hops > 10) throw new Error(`$ref loop at ${pointer}`)
    const target = String(current.value.$ref).slice(1)
    current = { value: at(doc, target), pointer: target }
  }
  return current
}

function at(doc: OpenApiDocument, pointer: string): any {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((node, part) => node?.[part], doc)
}

/** Escapes one segment of a JSON pointer. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1')
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

/** The documented operations other than HEAD, with their statuses. */
export function operations(doc: OpenApiDocument) {
  return Object.entries(doc.paths as Record<string, any>).flatMap(
    ([template, item]) =>
      METHODS.filter((method) => item[method]).map((method) => ({
        template,
        method: method.toUpperCase(),
        pointer: `/paths/${escapePointer(template)}/${method}`,
        operation: item[method] as Record<string, any>,
      })),
  )
}

/** The documented HEAD operations with their statuses. */
export function headOperations(doc: OpenApiDocument) {
  return Object.entries(doc.paths as Record<string, any>)
    .filter(([, item]) => item.head)
    .map(([template, item]) => ({
      template,
      statuses: Object.keys(item.head.responses as object),
      pointer: `/paths/${escapePointer(template)}/head`,
    }))
}

/** Every response example of every operation, as a case. */
export function conformanceCases(doc: OpenApiDocument): ConformanceCase[] {
  return operations(doc).flatMap(({ template, method, pointer, operation }) =>
    Object.keys(operation.responses as object).flatMap((status) => {
      const response = resolve(
        doc,
        `${pointer}/responses/${escapePointer(status)}`,
      )
      return casesOfResponse(doc, response, {
        method,
        template,
        status,
        operation,
        pathExamples: pathExamples(doc, pointer),
      })
    }),
  )
}

function pathExamples(
  doc: OpenApiDocument,
  operationPointer: string,
): Record<string, string> {
  const parameters = at(doc, `${operationPointer}/parameters`) ?? []
  const out: Record<string, string> = {}
  for (const index of parameters.keys()) {
    const parameter = resolve(doc, `${operationPointer}/parameters/${index}`)
    if (
      parameter.value.in === 'path' &&
      parameter.value.example !== undefined
    ) {
      out[parameter.value.name] = String(parameter.value.example)
    }
  }
  return out
}

function casesOfResponse(
  doc: OpenApiDocument,
  response: Resolved,
  where: {
    method: string
    template: string
    status: string
    operation: Record<string, any>
    pathExamples: Record<string, string>
  },
): ConformanceCase[] {
  const content = (response.value.content ?? {}) as Record<string, any>
  const bodyTypes = Object.keys(where.operation.requestBody?.content ?? {})
  return Object.entries(content).flatMap(([mediaType, media]) =>
    Object.keys(media.examples ?? {}).map((name) => {
      const example = resolve(
        doc,
        `${response.pointer}/content/${escapePointer(mediaType)}/examples/${escapePointer(name)}`,
      ).value
      const { path, ...raw } = (example['x-request'] ?? {}) as Record<
        string,
        any
      >
      return {
        title: `${where.method} ${where.template} ${where.status} ${name}`,
        method: where.method,
        template: where.template,
        status: where.status,
        mediaType,
        responsePointer: response.pointer,
        response: response.value,
        example,
        request: { ...raw, pathParams: path } as ExampleRequest,
        hasBody: bodyTypes.length > 0,
        bodyType: bodyTypes[0],
        hasRequest: 'x-request' in example,
        pathExamples: where.pathExamples,
      }
    }),
  )
}
