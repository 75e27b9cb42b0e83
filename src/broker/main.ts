/**
 * `npm run broker`: runs the broker with its settings from the environment
 * until the process is stopped.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { serve } from "./Broker.js"

NodeRuntime.runMain(serve)
