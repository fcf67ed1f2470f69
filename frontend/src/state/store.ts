// A minimal observable value for React's useSyncExternalStore: controllers own the logic,
// components subscribe to the snapshot.
import { useSyncExternalStore } from "react";

export class Store<T> {
  private listeners = new Set<() => void>();

  constructor(private value: T) {}

  get = (): T => this.value;

  set(update: Partial<T> | ((v: T) => T)) {
    this.value = typeof update === "function" ? update(this.value) : { ...this.value, ...update };
    for (const l of this.listeners) l();
  }

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };
}

export function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(store.subscribe, store.get, store.get);
}
