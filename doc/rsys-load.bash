# SPDX-License-Identifier: GPL-2.0
# bash completion for rsys-load; commands and options as in "rsys-load --help" and rsys-load(8).

_rsys_load()
{
	# Plain bash: no dependency on the bash-completion package's helpers.
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local -a words=("${COMP_WORDS[@]}")
	local cword=$COMP_CWORD

	local global_opts='-v --verbose -d --debug -j --json -h --help'
	local commands='attach detach status run learn vm trace help'
	local i cmd= cmd_idx=0

	# The command is the first word that is not a global option.
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-*) ;;
		*)
			cmd=${words[i]}
			cmd_idx=$i
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	case $cmd in
	attach)
		# One POLICY file.
		((cword == cmd_idx + 1)) && COMPREPLY=($(compgen -f -- "$cur"))
		;;
	status)
		((cword == cmd_idx + 1)) && COMPREPLY=($(compgen -W '-j --json' -- "$cur"))
		;;
	trace)
		case $prev in
		--pid | -p)
			COMPREPLY=($(compgen -W "$(ps -e -o pid= 2>/dev/null)" -- "$cur"))
			return
			;;
		esac
		COMPREPLY=($(compgen -W '-j --json -p --pid -d --denied -h --help' -- "$cur"))
		;;
	vm)
		for ((i = cmd_idx + 1; i < cword; i++)); do
			[[ ${words[i]} == -- ]] && return
		done
		case $prev in
		--kernel | --initrd | --policy)
			COMPREPLY=($(compgen -f -- "$cur"))
			return
			;;
		--mem | --cpus | --append | --delegate)
			return
			;;
		esac
		COMPREPLY=($(compgen -W '--kernel --initrd --mem --cpus --append -i --interactive -s --syscalls --trap-all --policy --delegate --no-fast-path --no-write-behind -v --verbose -h --help --' -- "$cur"))
		;;
	run | learn)
		# After "--" comes PROG and its arguments.
		for ((i = cmd_idx + 1; i < cword; i++)); do
			if [[ ${words[i]} == -- ]]; then
				if ((cword == i + 1)); then
					COMPREPLY=($(compgen -c -- "$cur"))
				else
					COMPREPLY=($(compgen -f -- "$cur"))
				fi
				return
			fi
		done
		case $prev in
		--policy | --tls-cert | --tls-key | --tls-ca)
			COMPREPLY=($(compgen -f -- "$cur"))
			return
			;;
		--delegate)
			COMPREPLY=($(compgen -W 'unix: tcp: vsock:' -- "$cur"))
			compopt -o nospace
			return
			;;
		--netns)
			COMPREPLY=($(compgen -W "$(ls /run/netns 2>/dev/null)" -- "$cur"))
			return
			;;
		--uid)
			# A numeric host uid; 0 is refused.
			return
			;;
		esac
		COMPREPLY=($(compgen -W '--policy --delegate --tls-cert --tls-key --tls-ca --netns --uid --no-sandbox --mode --no-write-behind --busy-poll -v --verbose -h --help --' -- "$cur"))
		;;
	esac
}
complete -o filenames -F _rsys_load rsys-load
