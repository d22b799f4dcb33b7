import {
  createRegistry,
  type DescExtension,
  type DescFile,
  type DescService,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/** Why a reflection lookup found nothing. */
export class DescriptorNotFoundError extends Error {
  override readonly name = "DescriptorNotFoundError";
}

/** Reports whether `error` is a {@link DescriptorNotFoundError}. */
export function isDescriptorNotFoundError(error: unknown): error is DescriptorNotFoundError {
  return error instanceof DescriptorNotFoundError;
}

/**
 * The descriptors a server offers to reflection clients: its services and every file they need,
 * transitively (google/api annotations, well-known types). Built once from the generated code's
 * embedded file descriptors, so it describes exactly what the server was compiled with.
 */
export interface DescriptorIndex {
  /** Fully-qualified names of the services offered, sorted. */
  readonly serviceNames: readonly string[];
  /**
   * Serialized `FileDescriptorProto`s of the file named `fileName` (e.g. `voxgate/v1/tts.proto`)
   * and its imports, the named file first; imports in `sent` are left out and those sent now are
   * added to it (a reflection stream sends each file once).
   * @throws DescriptorNotFoundError when no offered file has that name.
   */
  fileByName(fileName: string, sent: Set<string>): Uint8Array[];
  /**
   * As {@link fileByName}, for the file that defines `symbol`: a service, method, message (nested
   * ones too), field, enum, enum value or extension, fully qualified without a leading dot.
   * @throws DescriptorNotFoundError when no offered file defines it.
   */
  fileContainingSymbol(symbol: string, sent: Set<string>): Uint8Array[];
  /**
   * As {@link fileByName}, for the file that declares extension `number` of message `extendee`.
   * @throws DescriptorNotFoundError when there is no such message or extension.
   */
  fileContainingExtension(extendee: string, number: number, sent: Set<string>): Uint8Array[];
  /**
   * The extension numbers of `extendee` declared in the offered files, ascending.
   * @throws DescriptorNotFoundError when no offered file defines that message.
   */
  extensionNumbersOf(extendee: string): number[];
}

/** Builds the {@link DescriptorIndex} of `services` and the files they import. */
export function createDescriptorIndex(services: readonly DescService[]): DescriptorIndex {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const service of services) visit(service.file);
  const registry: Registry = createRegistry(...files.values());
  const encoded = new Map<string, Uint8Array>();
  const bytesOf = (file: DescFile) => {
    let bytes = encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      encoded.set(file.proto.name, bytes);
    }
    return bytes;
  };

  /** The file and its imports, breadth first, the file itself always, imports once per stream. */
  const withImports = (file: DescFile, sent: Set<string>): Uint8Array[] => {
    const out: Uint8Array[] = [];
    const queue = [file];
    const seen = new Set<string>();
    for (let current = queue.shift(); current; current = queue.shift()) {
      if (seen.has(current.proto.name)) continue;
      seen.add(current.proto.name);
      if (out.length === 0 || !sent.has(current.proto.name)) {
        out.push(bytesOf(current));
        sent.add(current.proto.name);
      }
      queue.push(...current.dependencies);
    }
    return out;
  };

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const type = registry.get(symbol);
    if (type) return type.file;
    // Methods, fields and enum values are not types: look their parent up.
    const dot = symbol.lastIndexOf(".");
    if (dot < 0) return undefined;
    const parent = registry.get(symbol.slice(0, dot));
    const member = symbol.slice(dot + 1);
    if (parent?.kind === "service") {
      return parent.methods.some((m) => m.name === member) ? parent.file : undefined;
    }
    if (
      parent?.kind === "message" &&
      (parent.fields.some((f) => f.name === member) || parent.oneofs.some((o) => o.name === member))
    ) {
      return parent.file;
    }
    // Enum values are scoped beside their enum (C++ scoping): `pkg.VALUE` for `pkg.Enum.VALUE`.
    for (const type of registry) {
      if (type.kind !== "enum") continue;
      const scope = type.typeName.slice(0, type.typeName.lastIndexOf("."));
      if (scope === symbol.slice(0, dot) && type.values.some((v) => v.name === member)) {
        return type.file;
      }
    }
    return undefined;
  };

  const extensionsOf = (extendee: string): DescExtension[] => {
    const message = registry.getMessage(extendee);
    if (!message) throw new DescriptorNotFoundError(`message ${extendee} not found`);
    const found: DescExtension[] = [];
    for (const type of registry) {
      if (type.kind === "extension" && type.extendee.typeName === extendee) found.push(type);
    }
    return found;
  };

  return {
    serviceNames: services.map((s) => s.typeName).sort(),
    fileByName(fileName, sent) {
      const file = files.get(fileName);
      if (!file) throw new DescriptorNotFoundError(`file ${fileName} not found`);
      return withImports(file, sent);
    },
    fileContainingSymbol(symbol, sent) {
      const file = fileOfSymbol(symbol.replace(/^\./, ""));
      if (!file) throw new DescriptorNotFoundError(`symbol ${symbol} not found`);
      return withImports(file, sent);
    },
    fileContainingExtension(extendee, number, sent) {
      const extension = extensionsOf(extendee).find((e) => e.number === number);
      if (!extension) {
        throw new DescriptorNotFoundError(`extension ${number} of ${extendee} not found`);
      }
      return withImports(extension.file, sent);
    },
    extensionNumbersOf(extendee) {
      return extensionsOf(extendee)
        .map((e) => e.number)
        .sort((a, b) => a - b);
    },
  };
}
