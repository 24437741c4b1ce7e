// Records never change once written (revocation is a mark, not an edit), so
// a store that keeps them in memory keeps one frozen copy and hands that same
// object to every reader: a copy per read was a few percent of a cache-hit
// Introspect, and a reader that tries to change it fails loudly.

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** A deep copy of value that nothing can change, the caller's original included. */
export function frozenCopy<T>(value: T): T {
  return deepFreeze(structuredClone(value));
}
