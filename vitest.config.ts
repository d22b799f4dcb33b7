import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["services/**/*.test.ts", "clients/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // End-to-end files spawn real gateway and agent processes; two cores here, so keep parallelism modest.
    maxWorkers: 2,
  },
});
