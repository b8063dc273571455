/**
 * Setup file of the `postgres` vitest project: drops the database this
 * test file's process made for its schemas (see `processDatabase`).
 */
import { afterAll, inject } from 'vitest'
import { dropProcessDatabase, POSTGRES_URL } from './postgres.js'

afterAll(() => dropProcessDatabase(inject('postgresUrl') ?? POSTGRES_URL))
