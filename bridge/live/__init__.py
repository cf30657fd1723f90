"""The live runtime: inputs on their own threads, one consumer that follows, sends and logs
(`runtime`), and the terminal view of it (`view`)."""
