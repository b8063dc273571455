#!/usr/bin/env node
// The public API reports: one API Extractor report per entry point of each
// package, committed in the package's etc/ folder, built from the .d.ts
// files of the build (run `npm run build` first).
//
//   node scripts/api-report.mjs          compare, exit 1 on any difference
//   node scripts/api-report.mjs --update rewrite the reports
//
// The check also fails when an exported function, class, type or constant
// has no TSDoc (ae-undocumented on a top-level declaration; members are not
// checked), and, in the packages of STRICT_EXPORTS, when the API uses a
// type that neither its entry point nor the package's main entry exports
// (ae-forgotten-export). Elsewhere such types are noted in the report.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  Extractor,
  ExtractorConfig,
  ExtractorLogLevel,
} from '@microsoft/api-extractor'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

// TODO(#8): @parley/server's options types still name internal types
// (GlobalBreaker, TwilioSettings, ...); its report lists them until its
// public types stop doing so.
const STRICT_EXPORTS = new Set(['@parley/core', '@parley/cli'])

/** Every entry point with a report: package folder, entry, report name. */
export function entryPoints() {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  return root.workspaces.flatMap((folder) => {
    const manifest = JSON.parse(
      readFileSync(join(ROOT, folder, 'package.json'), 'utf8'),
    )
    const unscoped = manifest.name.replace(/^@[^/]+\//, '')
    return Object.entries(manifest.exports)
      .filter(([subpath]) => subpath !== './package.json')
      .map(([subpath, target]) => ({
        name: manifest.name,
        main: subpath === '.',
        folder: join(ROOT, folder),
        entry: target.import.types,
        report:
          subpath === '.'
            ? unscoped
            : `${unscoped}-${subpath.slice(2).replaceAll('/', '-')}`,
      }))
  })
}

/**
 * Runs API Extractor on every entry point. With `update`, rewrites the
 * reports; without, compares. Resolves the problems found, as lines.
 */
export async function checkApiReports({ update = false } = {}) {
  return checkEntryPoints(entryPoints(), { update })
}

/** {@link checkApiReports} for the given entry points (main ones first). */
export async function checkEntryPoints(entries, { update = false } = {}) {
  const temp = mkdtempSync(join(tmpdir(), 'parley-api-'))
  const mainExports = new Map()
  try {
    return entries.flatMap((entry) => {
      const problems = runOne(entry, update, temp, mainExports)
      if (entry.main) {
        mainExports.set(entry.name, exportedNames(entry, update, temp))
      }
      return problems
    })
  } finally {
    rmSync(temp, { recursive: true, force: true })
  }
}

function runOne(entryPoint, update, temp, mainExports) {
  const { name, folder, entry, report } = entryPoint
  const strict = STRICT_EXPORTS.has(name)
  const fromMain = mainExports.get(name) ?? new Set()
  const problems = []
  const config = ExtractorConfig.prepare({
    configObject: configFor(folder, entry, report, temp, strict),
    configObjectFullPath: join(folder, 'api-extractor.json'),
    packageJsonFullPath: join(folder, 'package.json'),
  })
  const result = Extractor.invoke(config, {
    localBuild: update,
    messageCallback: (message) => {
      message.handled = true
      if (!isProblem(message, fromMain)) return
      problems.push(`${report}: ${message.formatMessageWithLocation(folder)}`)
    },
  })
  if (result.apiReportChanged && !update) {
    problems.push(
      `${report}: the public API differs from etc/${report}.api.md; ` +
        'if the change is meant, run `npm run api:update` and commit the report',
    )
  }
  return problems
}

// Informational console-* messages (report created, updated) are not
// problems. The .d.ts files are tsup's: a top-level declaration starts in
// column 1 and a member is indented, which tells an undocumented export
// from an undocumented member.
function isProblem(message, fromMain) {
  if (message.messageId.startsWith('console-')) return false
  if (message.logLevel === ExtractorLogLevel.None) return false
  if (message.messageId === 'ae-undocumented') {
    return message.sourceFileColumn === 1
  }
  if (message.messageId === 'ae-forgotten-export') {
    // A subpath names core's own types by the package's name.
    const symbol = /The symbol "([^"]+)"/.exec(message.text)?.[1]
    return !fromMain.has(symbol)
  }
  return true
}

// The names a main entry exports, read from its API report.
function exportedNames({ folder, report }, update, temp) {
  const file = join(update ? join(folder, 'etc') : temp, `${report}.api.md`)
  const text = readFileSync(file, 'utf8')
  const declared = text.matchAll(
    /^export (?:declare )?(?:abstract )?(?:function|class|interface|type|const|let|enum|namespace) (\w+)/gm,
  )
  return new Set([...declared].map((match) => match[1]))
}

function configFor(folder, entry, report, temp, strict) {
  return {
    projectFolder: folder,
    mainEntryPointFilePath: join(folder, entry),
    compiler: {
      overrideTsconfig: {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          strict: true,
          skipLibCheck: true,
        },
        files: [join(folder, entry)],
      },
    },
    apiReport: {
      enabled: true,
      reportFileName: report,
      reportFolder: join(folder, 'etc'),
      reportTempFolder: temp,
    },
    docModel: { enabled: false },
    dtsRollup: { enabled: false },
    tsdocMetadata: { enabled: false },
    messages: {
      compilerMessageReporting: { default: { logLevel: 'warning' } },
      extractorMessageReporting: {
        default: { logLevel: 'warning' },
        // Parley does not tag releases (@public, @beta): one API, one level.
        'ae-missing-release-tag': { logLevel: 'none' },
        // Reported here rather than in the report file, whose text would
        // then change with every line number of the build.
        'ae-undocumented': { logLevel: 'warning', addToApiReportFile: false },
        'ae-forgotten-export': {
          logLevel: 'warning',
          addToApiReportFile: !strict,
        },
      },
      // Presence of TSDoc is checked (ae-undocumented), not its dialect.
      tsdocMessageReporting: { default: { logLevel: 'none' } },
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const update = process.argv.includes('--update')
  const problems = await checkApiReports({ update })
  for (const problem of problems) console.error(problem)
  if (problems.length > 0) process.exit(1)
  console.log(update ? 'API reports updated' : 'API reports match')
}
