/**
 * The TypeScript examples of the READMEs and of the broker's guide, type-checked
 * as a reader would compile them: each ```ts block is a module of its own,
 * importing the packages by their published names, so they resolve to the built
 * declarations (`npm run build` first, as `npm test` does) through the packages'
 * `exports`, with the project's strict compiler options.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const ROOT = fileURLToPath(new URL("..", import.meta.url))

/** The documents whose examples are checked, from the repository's root. */
const DOCUMENTS = ["README.md", "packages/broker/README.md", "packages/broker/docs/broker.md"]

/** The ```ts blocks of a document, in order. */
const typeScriptBlocks = (markdown: string): ReadonlyArray<string> =>
  [...markdown.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((match) => match[1] ?? "")

/** The project's compiler options, without its `paths` (a reader has the packages, not their sources). */
const compilerOptions = (): ts.CompilerOptions => {
  const file = join(ROOT, "tsconfig.json")
  const { config } = ts.readConfigFile(file, ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, file)
  const { paths: _paths, ...rest } = options
  // An example may name a value only to show it (`const token = ...`).
  return { ...rest, noEmit: true, noUnusedLocals: false, noUnusedParameters: false }
}

/** The diagnostics of the examples, each as `file:line: message`, the files placed at the root to resolve as a reader's. */
const diagnosticsOf = (examples: ReadonlyMap<string, string>): ReadonlyArray<string> => {
  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile
  host.getSourceFile = (name, language, ...rest) => {
    const text = examples.get(name)
    return text === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, text, language)
  }
  const fileExists = host.fileExists
  host.fileExists = (name) => examples.has(name) || fileExists(name)
  const readFile = host.readFile
  host.readFile = (name) => examples.get(name) ?? readFile(name)
  const program = ts.createProgram([...examples.keys()], options, host)
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
    if (diagnostic.file === undefined || diagnostic.start === undefined) return message
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    return `${diagnostic.file.fileName.replace(ROOT, "")}:${line + 1}: ${message}`
  })
}

describe("the documents' TypeScript examples", { timeout: 120_000 }, () => {
  const examples = new Map(
    DOCUMENTS.flatMap((document) =>
      typeScriptBlocks(readFileSync(join(ROOT, document), "utf8")).map(
        (block, index) => [join(ROOT, `${document.replaceAll("/", "_")}.example-${index + 1}.ts`), block] as const
      )
    )
  )

  it("finds them", () => {
    expect(examples.size).toBeGreaterThanOrEqual(6)
  })

  it("type-check", () => {
    expect(diagnosticsOf(examples)).toEqual([])
  })
})
