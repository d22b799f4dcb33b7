import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { type AdmissionRequest, createAdmissionQueue } from "./admission-queue.js";

/** A pool of `slots` interchangeable slots; a lease is the slot's number. */
function pool(slots: number) {
  let free = slots;
  return {
    get free() {
      return free;
    },
    take(): number | undefined {
      if (free === 0) return undefined;
      free--;
      return slots - free;
    },
    give() {
      free++;
    },
  };
}

function request(
  key: string,
  slots: ReturnType<typeof pool>,
  extra: Partial<AdmissionRequest<number>> = {},
): AdmissionRequest<number> {
  return {
    key,
    group: "any",
    tryAcquire: () => slots.take(),
    capacity: () => 1,
    signal: new AbortController().signal,
    timeoutMs: undefined,
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected a rejection");
}

describe("admission queue", () => {
  it("admits at once when a slot is free, else when one frees", async () => {
    const queue = createAdmissionQueue();
    const slots = pool(1);
    await expect(queue.wait(request("a", slots))).resolves.toBe(1);
    let admitted = false;
    const second = queue.wait(request("a", slots)).then((lease) => {
      admitted = true;
      return lease;
    });
    await Promise.resolve();
    expect(admitted).toBe(false);
    expect(queue.stats().queued).toBe(1);
    slots.give();
    queue.pump();
    await expect(second).resolves.toBe(1);
    expect(queue.stats()).toMatchObject({ queued: 0, admittedTotal: 2 });
  });

  it("takes turns across keys: one busy key cannot starve another", async () => {
    const queue = createAdmissionQueue();
    const slots = pool(1);
    slots.take();
    const order: string[] = [];
    const waits = [
      ...["a1", "a2", "a3", "a4", "a5"].map((name) =>
        queue.wait(request("a", slots)).then(() => order.push(name)),
      ),
      ...["b1", "b2"].map((name) => queue.wait(request("b", slots)).then(() => order.push(name))),
    ];
    for (let i = 0; i < 7; i++) {
      slots.give();
      queue.pump();
      await Promise.resolve();
      await Promise.resolve();
    }
    await Promise.all(waits);
    expect(order).toEqual(["a1", "b1", "a2", "b2", "a3", "a4", "a5"]);
  });

  it("orders a key's calls by deadline, earliest first", async () => {
    const queue = createAdmissionQueue();
    const slots = pool(1);
    slots.take();
    const order: number[] = [];
    const waits = [5000, 1000, 3000].map((timeoutMs) =>
      queue.wait(request("a", slots, { timeoutMs })).then(() => order.push(timeoutMs)),
    );
    for (let i = 0; i < 3; i++) {
      slots.give();
      queue.pump();
      await Promise.resolve();
    }
    await Promise.all(waits);
    expect(order).toEqual([1000, 3000, 5000]);
  });

  it("removes a call at once when its caller goes away", async () => {
    const queue = createAdmissionQueue();
    const slots = pool(1);
    slots.take();
    const controller = new AbortController();
    const waiting = queue.wait(request("a", slots, { signal: controller.signal }));
    expect(queue.stats().queued).toBe(1);
    controller.abort();
    expect(queue.stats().queued).toBe(0);
    expect((await rejection(waiting)).code).toBe(Code.Canceled);
    // The freed slot is not taken by the departed call.
    slots.give();
    queue.pump();
    expect(slots.free).toBe(1);
  });

  it("ends the wait with DEADLINE_EXCEEDED when the deadline passes", async () => {
    const queue = createAdmissionQueue({ maxWaitMs: 60_000 });
    const slots = pool(1);
    slots.take();
    const error = await rejection(queue.wait(request("a", slots, { timeoutMs: 30 })));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toMatch(/^the deadline passed while the call waited \d+ ms/);
    expect(queue.stats()).toMatchObject({ queued: 0, expiredTotal: 1 });
  });

  it("ends the wait with RESOURCE_EXHAUSTED and Retry-After after the longest wait", async () => {
    const queue = createAdmissionQueue({ maxWaitMs: 30 });
    const slots = pool(1);
    slots.take();
    const error = await rejection(queue.wait(request("a", slots, { timeoutMs: 10_000 })));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("VOXGATE_QUEUE_MAX_WAIT_MS");
    expect(Number(error.metadata.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("refuses with RESOURCE_EXHAUSTED and Retry-After when the queue is full", async () => {
    const queue = createAdmissionQueue({ maxQueued: 2 });
    const slots = pool(1);
    slots.take();
    const controller = new AbortController();
    const waits = [1, 2].map(() =>
      queue.wait(request("a", slots, { signal: controller.signal })).catch(() => undefined),
    );
    const error = await rejection(queue.wait(request("b", slots)));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe(
      "every slot is busy and the admission queue is full (2 calls waiting; max queued calls: VOXGATE_QUEUE_MAX); retry later",
    );
    expect(error.metadata.get("retry-after")).toMatch(/^[1-9]\d*$/);
    expect(queue.stats()).toMatchObject({ queued: 2, refusedTotal: 1 });
    controller.abort();
    await Promise.all(waits);
  });

  it("refuses at once when the expected wait is longer than the deadline", async () => {
    const queue = createAdmissionQueue();
    queue.recordService(2000);
    const slots = pool(1);
    slots.take();
    const controller = new AbortController();
    const first = queue
      .wait(request("a", slots, { signal: controller.signal, timeoutMs: 10_000 }))
      .catch(() => undefined);
    // One call ahead, one slot, 2 s per call: about 4 s, more than the 1 s this call may wait.
    const error = await rejection(queue.wait(request("b", slots, { timeoutMs: 1000 })));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toMatch(/^every slot is busy; the expected wait \(4000 ms/);
    expect(error.metadata.get("retry-after")).toBe("4");
    controller.abort();
    await first;
  });

  it("skips calls whose backends have no slot and serves the next that fits", async () => {
    const queue = createAdmissionQueue();
    const small = pool(1);
    const large = pool(1);
    small.take();
    large.take();
    const order: string[] = [];
    const waits = [
      queue.wait(request("a", small, { group: "small" })).then(() => order.push("small")),
      queue.wait(request("b", large, { group: "large" })).then(() => order.push("large")),
    ];
    large.give();
    queue.pump();
    await Promise.resolve();
    expect(order).toEqual(["large"]);
    small.give();
    queue.pump();
    await Promise.all(waits);
    expect(order).toEqual(["large", "small"]);
  });

  it("serves a resumed call (its slot was taken after all) before every line", async () => {
    const queue = createAdmissionQueue({ maxQueued: 1 });
    const slots = pool(1);
    slots.take();
    const order: string[] = [];
    const waits = [
      queue.wait(request("a", slots)).then(() => order.push("a")),
      queue.wait(request("b", slots, { resume: true })).then(() => order.push("b resumed")),
    ];
    expect(queue.stats().queued).toBe(2);
    for (let i = 0; i < 2; i++) {
      slots.give();
      queue.pump();
      await Promise.resolve();
    }
    await Promise.all(waits);
    expect(order).toEqual(["b resumed", "a"]);
  });
});
