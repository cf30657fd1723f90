"""Following the player (pure core): where in the score they are (`follower`), which score
note each key press was and whether it was right (`matcher`), and the `engine` that feeds
both from an event stream. No clocks, devices or files: times and events are passed in."""
