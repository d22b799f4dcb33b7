import type {
  DescriptorProto,
  EnumDescriptorProto,
  FileDescriptorSet,
  SourceCodeInfo_Location,
} from "@bufbuild/protobuf/wkt";
import type { ProtoComments } from "./proto-json-schema.js";

// Field numbers in google/protobuf/descriptor.proto that source code info paths go through.
const FILE_MESSAGE = 4;
const FILE_ENUM = 5;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED = 3;
const MESSAGE_ENUM = 4;
const ENUM_VALUE = 2;
const SERVICE_METHOD = 2;

/**
 * Reads the leading comments of every element of `set` (a `buf build` image, which keeps source
 * code info; the descriptors embedded in generated code do not) into a lookup by fully-qualified
 * name: `pkg.Message`, `pkg.Message.field`, `pkg.Enum.VALUE`, `pkg.Service.Method`. Comment
 * lines lose the one space after `//`; blank lines separate paragraphs.
 */
export function commentsFromDescriptorSet(set: FileDescriptorSet): ProtoComments {
  const byName = new Map<string, string>();
  for (const file of set.file) {
    const byPath = new Map<string, SourceCodeInfo_Location>();
    for (const location of file.sourceCodeInfo?.location ?? []) {
      byPath.set(location.path.join("."), location);
    }
    const note = (name: string, path: number[]) => {
      const text = clean(byPath.get(path.join("."))?.leadingComments ?? "");
      if (text) byName.set(name, text);
    };
    const scope = file.package ? `${file.package}.` : "";
    const visitEnum = (e: EnumDescriptorProto, name: string, path: number[]) => {
      note(name, path);
      e.value.forEach((v, i) => {
        note(`${name}.${v.name}`, [...path, ENUM_VALUE, i]);
      });
    };
    const visitMessage = (m: DescriptorProto, name: string, path: number[]) => {
      note(name, path);
      m.field.forEach((f, i) => {
        note(`${name}.${f.name}`, [...path, MESSAGE_FIELD, i]);
      });
      m.nestedType.forEach((n, i) => {
        visitMessage(n, `${name}.${n.name}`, [...path, MESSAGE_NESTED, i]);
      });
      m.enumType.forEach((e, i) => {
        visitEnum(e, `${name}.${e.name}`, [...path, MESSAGE_ENUM, i]);
      });
    };
    file.messageType.forEach((m, i) => {
      visitMessage(m, `${scope}${m.name}`, [FILE_MESSAGE, i]);
    });
    file.enumType.forEach((e, i) => {
      visitEnum(e, `${scope}${e.name}`, [FILE_ENUM, i]);
    });
    file.service.forEach((s, i) => {
      note(`${scope}${s.name}`, [FILE_SERVICE, i]);
      s.method.forEach((m, j) => {
        note(`${scope}${s.name}.${m.name}`, [FILE_SERVICE, i, SERVICE_METHOD, j]);
      });
    });
  }
  return (name) => byName.get(name);
}

/** Comment text without the space after `//` and without leading or trailing blank lines. */
function clean(text: string): string {
  return text
    .split("\n")
    .map((line) => line.replace(/^ /, "").trimEnd())
    .join("\n")
    .trim();
}
