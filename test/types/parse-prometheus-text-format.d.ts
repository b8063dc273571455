// The package ships no types; this is the part of its output tests read.
declare module 'parse-prometheus-text-format' {
  interface ParsedMetric {
    readonly value?: string
    readonly labels?: Record<string, string>
    readonly sum?: string
    readonly count?: string
  }
  interface ParsedFamily {
    readonly name: string
    readonly help: string
    readonly type: string
    readonly metrics: ParsedMetric[]
  }
  export default function parse(text: string): ParsedFamily[]
}
