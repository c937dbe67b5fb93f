/// <reference path="./interfaces/kubewasm-plugin-host.d.ts" />
/// <reference path="./interfaces/kubewasm-plugin-reconciler.d.ts" />
/// <reference path="./interfaces/kubewasm-plugin-types.d.ts" />
declare module 'kubewasm:plugin/plugin@0.2.0' {
  export type * as KubewasmPluginHost020 from 'kubewasm:plugin/host@0.2.0'; // import kubewasm:plugin/host@0.2.0
  export type * as KubewasmPluginTypes020 from 'kubewasm:plugin/types@0.2.0'; // import kubewasm:plugin/types@0.2.0
  export * as reconciler from 'kubewasm:plugin/reconciler@0.2.0'; // export kubewasm:plugin/reconciler@0.2.0
}
