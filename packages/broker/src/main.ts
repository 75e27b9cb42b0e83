/**
 * `npm run broker`: runs the broker with its settings from the environment
 * until the process is stopped.
 *
 * A broker that cannot start says why on stderr, in words (`The broker could
 * not start: ...`, a configuration file's problems each on a line of its own
 * with its path), and exits with code 1; a stop by a signal exits with 0.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect } from "effect"
import * as Logging from "effect-connect/Logging"
import { serve } from "./Broker.js"
import { describeStartupFailure } from "./internal/startupFailure.js"

const main = serve.pipe(
  // One log format for the broker, the CLI and the SDK: CONNECT_LOG_FORMAT, on stderr.
  Effect.provide(Logging.layerConfig),
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.void : Console.error(describeStartupFailure(cause))
  )
)

NodeRuntime.runMain(main, { disableErrorReporting: true })
