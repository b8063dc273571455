/** An item that knows its own position in an {@link IndexedMinHeap}. */
export interface HeapItem {
  /** The item's index in the heap's array; -1 when not in a heap. */
  heapIndex: number
}

/**
 * A binary min-heap whose items carry their own index, so that an item
 * whose priority changed is moved in O(log n) without a search. The
 * priority of an item must not change between calls except through
 * {@link IndexedMinHeap.update}.
 */
export class IndexedMinHeap<T extends HeapItem> {
  private readonly items: T[] = []

  /** @param priority - The item's priority; the smallest is on top. */
  constructor(private readonly priority: (item: T) => number) {}

  /** The number of items. */
  get size(): number {
    return this.items.length
  }

  /** The item with the smallest priority, or `undefined` when empty. */
  peek(): T | undefined {
    return this.items[0]
  }

  /** Adds an item. O(log n). */
  push(item: T): void {
    item.heapIndex = this.items.length
    this.items.push(item)
    this.siftUp(item.heapIndex)
  }

  /** Removes and returns the top item. O(log n). */
  pop(): T | undefined {
    const top = this.items[0]
    if (top === undefined) return undefined

    const last = this.items.pop() as T
    if (last !== top) {
      this.place(last, 0)
      this.siftDown(0)
    }
    top.heapIndex = -1
    return top
  }

  /** Restores the order after `item`'s priority changed. O(log n). */
  update(item: T): void {
    this.siftDown(this.siftUp(item.heapIndex))
  }

  private siftUp(index: number): number {
    const item = this.items[index] as T
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = this.items[parentIndex] as T
      if (this.priority(parent) <= this.priority(item)) break
      this.place(parent, index)
      index = parentIndex
    }
    this.place(item, index)
    return index
  }

  private siftDown(index: number): void {
    const item = this.items[index] as T
    for (;;) {
      const child = this.smallerChild(index)
      if (child === undefined) break
      if (this.priority(item) <= this.priority(child)) break
      const childIndex = child.heapIndex
      this.place(child, index)
      index = childIndex
    }
    this.place(item, index)
  }

  private smallerChild(index: number): T | undefined {
    const left = this.items[2 * index + 1]
    const right = this.items[2 * index + 2]
    if (left === undefined || right === undefined) return left
    return this.priority(right) < this.priority(left) ? right : left
  }

  private place(item: T, index: number): void {
    this.items[index] = item
    item.heapIndex = index
  }
}
