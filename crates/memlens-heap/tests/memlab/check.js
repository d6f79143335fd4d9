// Loads a .heapsnapshot with MemLab (which computes its own dominators and retained sizes) and
// prints what the Rust test compares: node and edge counts, and for every `list` node its
// self size, retained size and the names of the edges that refer to it.
const {getFullHeapFromFile} = require('@memlab/heap-analysis');
(async () => {
  const heap = await getFullHeapFromFile(process.argv[2]);
  let nodes = 0, edges = 0;
  const lists = [];
  heap.nodes.forEach(n => {
    nodes++;
    edges += n.edge_count;
    if (n.name === 'list') {
      lists.push({
        self: n.self_size,
        retained: n.retainedSize,
        referrers: n.referrers.map(e => String(e.name_or_index)),
      });
    }
  });
  console.log(JSON.stringify({nodes, edges, lists}));
})().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
