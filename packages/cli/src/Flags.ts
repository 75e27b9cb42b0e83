/**
 * The shapes of flag the commands share: an optional text or number with its
 * description, `--format plain|json`, the `<connector>` argument, and the
 * fields of a request that are sent only when given.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Options from "@effect/cli/Options"
import { Option } from "effect"

/**
 * An optional text flag.
 *
 * @since 0.1.0
 * @category options
 */
export const optionalText = (name: string, description: string): Options.Options<Option.Option<string>> =>
  Options.text(name).pipe(Options.withDescription(description), Options.optional)

/**
 * An optional whole-number flag.
 *
 * @since 0.1.0
 * @category options
 */
export const optionalInteger = (name: string, description: string): Options.Options<Option.Option<number>> =>
  Options.integer(name).pipe(Options.withDescription(description), Options.optional)

/**
 * A default for an option, said in its help (`@effect/cli` does not show it).
 *
 * @since 0.1.0
 * @category options
 */
export const withDefault =
  <const B extends string | number>(value: B) =>
  <A>(options: Options.Options<A>): Options.Options<A | B> =>
    options.pipe(Options.withDefault(value), Options.withDescription(`Default: ${value}.`))

/**
 * `--format plain|json`, `plain` by default; `description` says what each prints.
 *
 * @since 0.1.0
 * @category options
 */
export const format = (description: string): Options.Options<"plain" | "json"> =>
  Options.choice("format", ["plain", "json"]).pipe(Options.withDescription(description), withDefault("plain"))

/**
 * The `<connector>` argument.
 *
 * @since 0.1.0
 * @category arguments
 */
export const connector = (description = "The connector, e.g. acme/api"): Args.Args<string> =>
  Args.text({ name: "connector" }).pipe(Args.withDescription(description))

/**
 * `{ [key]: value }` when the flag was given, else nothing: spread into a
 * request so that an absent flag sends no field.
 *
 * @since 0.1.0
 * @category utils
 */
export const field = <K extends string, A>(key: K, value: Option.Option<A>): { readonly [P in K]?: A } =>
  (Option.isSome(value) ? { [key]: value.value } : {}) as { readonly [P in K]?: A }

/**
 * `{ [key]: values }` when there is at least one value, else nothing.
 *
 * @since 0.1.0
 * @category utils
 */
export const nonEmptyField = <K extends string, A>(
  key: K,
  values: Option.Option<ReadonlyArray<A>> | ReadonlyArray<A>
): { readonly [P in K]?: ReadonlyArray<A> } => {
  const list = Option.isOption(values) ? Option.getOrElse(values, () => []) : values
  return (list.length > 0 ? { [key]: list } : {}) as { readonly [P in K]?: ReadonlyArray<A> }
}
