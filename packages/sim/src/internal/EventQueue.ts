/**
 * A binary min-heap of timed events ordered by (time, sequence): events due at the same time run in the
 * order they were scheduled, so delivery order never depends on fiber scheduling.
 *
 * @internal
 */

export interface Event {
  readonly time: number
  readonly seq: number
  readonly run: () => void
  cancelled: boolean
}

export class EventQueue {
  private heap: Array<Event> = []
  private seq = 0

  get size(): number {
    return this.heap.length
  }

  push(time: number, run: () => void): Event {
    const event: Event = { time, seq: this.seq++, run, cancelled: false }
    const heap = this.heap
    heap.push(event)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent] as Event
      if (!before(event, p)) break
      heap[i] = p
      i = parent
    }
    heap[i] = event
    return event
  }

  /** The earliest live event's time, dropping cancelled events from the top. */
  peekTime(): number | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0] as Event
      if (!top.cancelled) return top.time
      this.pop()
    }
    return undefined
  }

  pop(): Event | undefined {
    const heap = this.heap
    if (heap.length === 0) return undefined
    const top = heap[0] as Event
    const last = heap.pop() as Event
    if (heap.length > 0) {
      let i = 0
      const n = heap.length
      while (true) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const child = r < n && before(heap[r] as Event, heap[l] as Event) ? r : l
        const c = heap[child] as Event
        if (!before(c, last)) break
        heap[i] = c
        i = child
      }
      heap[i] = last
    }
    return top
  }
}

const before = (a: Event, b: Event): boolean => a.time < b.time || (a.time === b.time && a.seq < b.seq)
