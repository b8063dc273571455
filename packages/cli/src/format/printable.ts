// Line breaks and tabs would break a table row; other control characters
// (C0, DEL, C1) could drive the terminal (ANSI escapes); bidirectional
// overrides could make text read differently from what it is. Message
// bodies come from strangers, so none of these reach the terminal as is.
const lineBreaksAndTabs = /\r\n|[\r\n\t\v\f\u2028\u2029]/g
const unsafe = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/**
 * Makes server-provided text safe to print on one terminal line: line
 * breaks and tabs become spaces, other control and bidirectional override
 * characters become U+FFFD.
 */
export function toPrintable(text: string): string {
  return text.replace(lineBreaksAndTabs, ' ').replace(unsafe, '\ufffd')
}
