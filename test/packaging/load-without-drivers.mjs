// node load-without-drivers.mjs <esm|cjs> <specifier>
// Loads <specifier> the given way and prints one JSON line saying whether
// it loaded and which database drivers came with it. ESM: a resolve hook
// refuses the drivers (refuse-drivers-hook.mjs). CJS: require.cache lists
// every module file that was loaded.
import { createRequire, register } from 'node:module'

const [how, specifier] = process.argv.slice(2)
const DRIVER_FILE = /[\\/]node_modules[\\/](better-sqlite3|pg)[\\/]/

async function loadEsm() {
  register('./refuse-drivers-hook.mjs', import.meta.url)
  await import(specifier)
  return []
}

function loadCjs() {
  const require = createRequire(import.meta.url)
  require(specifier)
  const drivers = Object.keys(require.cache)
    .map((file) => DRIVER_FILE.exec(file)?.[1])
    .filter((driver) => driver !== undefined)
  return [...new Set(drivers)].sort()
}

try {
  const drivers = how === 'esm' ? await loadEsm() : loadCjs()
  console.log(JSON.stringify({ loaded: true, drivers }))
} catch (error) {
  const refused = error.code === 'ERR_PARLEY_DRIVER_RESOLVED'
  if (!refused) throw error
  console.log(JSON.stringify({ loaded: false, refused: error.message }))
}
