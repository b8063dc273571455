// Writes src/http/openapi-document.ts from docs/openapi.yaml, the one
// source of the API description: the server embeds the JSON it writes and
// serves it at GET /openapi.json. Run by the server's build; a test fails
// when the two differ.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const source = new URL('../../../docs/openapi.yaml', import.meta.url)
const target = new URL('../src/http/openapi-document.ts', import.meta.url)

const document = parse(readFileSync(source, 'utf8'), { maxAliasCount: -1 })
const json = JSON.stringify(document)
const module = [
  '// Generated from docs/openapi.yaml by packages/server/scripts/openapi-json.mjs',
  '// (the build runs it): edit the YAML, not this file.',
  '',
  '/** The OpenAPI document served at `GET /openapi.json`, as JSON text. */',
  `export const OPENAPI_JSON: string = ${JSON.stringify(json)}`,
  '',
].join('\n')

const current = (() => {
  try {
    return readFileSync(target, 'utf8')
  } catch {
    return ''
  }
})()
if (current !== module) {
  writeFileSync(target, module)
  console.log(`wrote ${fileURLToPath(target)}`)
}
