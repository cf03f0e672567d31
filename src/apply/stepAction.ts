/** One entry of what a provisioning step did (same verbs as the registry executor's actions). */
export interface StepAction {
  action: 'create' | 'recreate' | 'update' | 'noop' | 'remove' | 'warn';
  /** What it acted on, e.g. `cluster lok8s`, `node lok8s-control-plane -> lok8s-registries`. */
  object: string;
  detail?: string;
}

export const changed = (actions: readonly StepAction[]): StepAction[] => actions.filter((a) => a.action !== 'noop');
