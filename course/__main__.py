"""``python -m course build [NN ...] [--force] | check | learner-path [NN ...] | quiz-hash ID CHOICE
| publish [OWNER/NAME | --check]
| guide [--check | --links] | pacing [--check] | workshop [--check] | glossary [--check | --link]
| errors [--check] | figures [--check | --write] | claims [--check | --write] | refs [--check | --write]
| lock [--check] | site [--out DIR | --check DIR]``."""

import sys

from course import build, quiz


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command == "build":
        force = "--force" in args
        return build.build([a for a in args if a != "--force"] or None, force=force)
    if command == "check":
        return build.check()
    if command == "learner-path":
        from course import learner_path

        return learner_path.main(args)
    if command == "publish":
        from course import publish

        return publish.main(args)
    if command == "guide":
        from course import guide

        return guide.main(args)
    if command == "pacing":
        from course import pacing

        return pacing.main(args)
    if command == "workshop":
        from course import workshop

        return workshop.main(args)
    if command == "glossary":
        from course import glossary

        return glossary.main(args)
    if command == "errors":
        from course import errors

        return errors.main(args)
    if command == "figures":
        from course import figures

        return figures.main(args)
    if command == "claims":
        from course import claims

        return claims.main(args)
    if command == "refs":
        from course import refs

        return refs.main(args)
    if command == "site":
        from course import site

        return site.main(args)
    if command == "lock":
        from course import lock

        return lock.main(args)
    if command == "quiz-hash" and len(args) == 2:
        print(quiz.digest(*args))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
