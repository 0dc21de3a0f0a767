import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { sourceHash } from "./sourcehash.mjs";

// The Go binary embeds dist/ (web/web.go); source-hash.txt lets a Go test see when dist/ is
// older than the sources.
export default defineConfig({
  plugins: [
    react(),
    {
      name: "paved-source-hash",
      apply: "build",
      generateBundle() {
        this.emitFile({ type: "asset", fileName: "source-hash.txt", source: sourceHash(fileURLToPath(new URL(".", import.meta.url))) + "\n" });
      },
    },
  ],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
  test: { environment: "node", include: ["src/**/*.test.{ts,tsx}"] },
});
