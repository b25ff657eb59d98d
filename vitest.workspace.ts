import type { TestProjectConfiguration } from "vitest/config"

const sourceCondition = ["@diesel/source", "module", "node", "import", "default"]

const project = (name: string, root: string, include: Array<string>): TestProjectConfiguration => ({
  resolve: { conditions: sourceCondition },
  ssr: { resolve: { conditions: sourceCondition, externalConditions: ["@diesel/source"] } },
  test: {
    name,
    root,
    include,
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})

/** The test projects: one per package, plus the examples (each example also runs as a test). */
export const projects: Array<TestProjectConfiguration> = [
  project("core", "packages/core", ["test/**/*.test.ts"]),
  project("udp", "packages/udp", ["test/**/*.test.ts"]),
  project("tcp", "packages/tcp", ["test/**/*.test.ts"]),
  project("http", "packages/http", ["test/**/*.test.ts"]),
  project("clients", "packages/clients", ["test/**/*.test.ts"]),
  project("sim", "packages/sim", ["test/**/*.test.ts"]),
  project("examples", "examples", ["**/*.test.ts"])
]
