#!/usr/bin/env bash
# Writes BODY_FILE as the pull request's one stage comment (.github/workflows/stage.yml):
# edits the comment of github-actions[bot] that holds $COMMENT_MARKER, or posts one.
# Needs GH_TOKEN (pull-requests: write), GITHUB_REPOSITORY, PR_NUMBER and COMMENT_MARKER.
set -euo pipefail
body="$1"
comments="repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments"
# Only the workflow's own comments: anyone may write the marker into theirs.
id="$(gh api --paginate "$comments" \
  --jq ".[] | select(.user.login == \"github-actions[bot]\" and (.body | contains(\"$COMMENT_MARKER\"))) | .id" |
  sed -n 1p)"
if [ -n "$id" ]; then
  gh api -X PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" -F "body=@$body" > /dev/null
else
  gh api -X POST "$comments" -F "body=@$body" > /dev/null
fi
