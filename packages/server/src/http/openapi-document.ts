// Generated from docs/openapi.yaml by packages/server/scripts/openapi-json.mjs
// (the build runs it): edit the YAML, not this file.

/** The OpenAPI document served at `GET /openapi.json`, as JSON text. */
export const OPENAPI_JSON: string = "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"Parley\",\"version\":\"0.1.0\"},\"paths\":{}}"
