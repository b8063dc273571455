#!/usr/bin/env node
// Committed launcher: npm links workspace bins at install time, before the
// build has produced dist/, so the bin must exist without a build.
import('../dist/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write(
      'parley-server: not built yet; run `npm run build` first\n',
    )
    process.exit(1)
  }
  throw error
})
