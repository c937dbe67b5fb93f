/// <reference path="../types/plugin.d.ts" />
// The contract's types as componentize-js spells them, from the declarations
// `jco guest-types` generates from wit/plugin.wit into types/ (regenerate with
// tools/types.sh). The SDK's own types wrap these; a plugin rarely needs them.

export type {
  EventSeverity,
  EventType,
  GroupKind,
  Intent,
  KindRef,
  LogLevel,
  MapRule,
  ObjectRef,
  Outcome as WitOutcome,
  PluginInfo as WitPluginInfo,
  PropagationPolicy,
  ResourceKind,
  Event as WitEvent,
  Subscription as WitSubscription,
  Timestamp as WitTimestamp,
  WriteScope,
} from 'kubewasm:plugin/types@0.2.0';
