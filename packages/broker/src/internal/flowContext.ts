import type { Context, Deferred, FiberSet } from "effect"
import type { DeviceAuthorizationsService } from "../DeviceAuthorizations.js"
import type { EventsService } from "../Events.js"
import type { BrowserAnswer } from "../Pages.js"
import type { ProviderClientService } from "../ProviderClient.js"
import type { Store } from "../Store.js"
import type { Tokens } from "../Tokens.js"

/** What the authorization flows work with: the services they use, and the state of the service that runs them. */
export interface FlowContext {
  readonly store: Store["Type"]
  readonly tokens: Context.Tag.Service<typeof Tokens>
  readonly devices: DeviceAuthorizationsService
  readonly provider: ProviderClientService
  /** The event history: requests started, completed and failed. */
  readonly events: EventsService
  /** The broker's public URL. */
  readonly publicUrl: string
  /** Where the provider sends the user back: the broker's callback. */
  readonly callbackUrl: string
  /** How many requests a project may have open at once. */
  readonly maxPending: number
  /** Callbacks' completions run here, not in the browser's request: they end with the broker, not with the browser. */
  readonly completions: FiberSet.FiberSet<BrowserAnswer>
  /** The outcome of each completion under way in this process, for the replayed callbacks that wait for it. */
  readonly inFlight: Map<string, Deferred.Deferred<BrowserAnswer>>
}
