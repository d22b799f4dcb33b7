import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["services/**/*.test.ts", "clients/**/*.test.ts", "test/**/*.test.ts"],
    // Generous: on a loaded 2-core CI machine a fresh in-memory PGlite took over 30 s to open.
    testTimeout: 90_000,
    hookTimeout: 90_000,
    // End-to-end files spawn real gateway and agent processes; two cores here, so keep parallelism modest.
    maxWorkers: 2,
  },
});
