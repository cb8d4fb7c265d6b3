declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of a Postgres cluster that tests may create databases on. */
    postgresUrl: string
  }
}

export {}
