/**
 * What a program that runs the broker (`npm run broker`, `connect serve`)
 * needs around it: where its data lives, and a start-up failure in words.
 *
 * @since 0.2.0
 */
export {
  /**
   * The data directory (`CONNECT_DATA_DIR`, default `.connect`).
   *
   * @since 0.2.0
   * @category config
   */
  dataDirConfig
} from "./internal/dataDir.js"
export {
  /**
   * A start-up failure as the lines an operator reads (configuration problems each on a line with its path).
   *
   * @since 0.2.0
   * @category utils
   */
  describeStartupFailure
} from "./internal/startupFailure.js"
