// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file writes a bash script, whose ${…} are bash's

import type { Command } from 'commander'

/**
 * A bash completion script for `program`, from its own command tree (so it cannot drift):
 * subcommands after each command, then that command's options. zsh loads it through
 * bashcompinit.
 */
export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const cases: string[] = []
  const walk = (command: Command, path: string[]) => {
    const words = [
      ...command.commands.map((sub) => sub.name()),
      ...command.options.flatMap((option) => [option.long, option.short].filter((flag): flag is string => !!flag)),
      ...(path.length > 0 ? program.options.map((option) => option.long).filter((flag): flag is string => !!flag) : []),
    ]
    cases.push(`    "${path.join(' ')}") words="${[...new Set(words)].join(' ')}" ;;`)
    for (const sub of command.commands) walk(sub, [...path, sub.name()])
  }
  walk(program, [])
  const bash = [
    '# tokend completion: eval "$(tokend completion bash)" in ~/.bashrc',
    '_tokend() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" path="" word words',
    '  for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do',
    '    case "$word" in -*) ;; *) if [[ -z "$path" ]]; then path="$word"; else path="$path $word"; fi ;; esac',
    '  done',
    '  while :; do',
    '    words=""',
    '    case "$path" in',
    ...cases,
    '    esac',
    '    [[ -n "$words" || -z "$path" ]] && break',
    '    if [[ "$path" == *" "* ]]; then path="${path% *}"; else path=""; fi',
    '  done',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    'complete -o default -F _tokend tokend',
    '',
  ]
  if (shell === 'bash') return bash.join('\n')
  return [
    '# tokend completion: eval "$(tokend completion zsh)" in ~/.zshrc',
    'autoload -U +X bashcompinit && bashcompinit',
    ...bash.slice(1),
  ].join('\n')
}
