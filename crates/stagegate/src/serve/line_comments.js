// The gate page's line comments: a click on a line number of an artifact's source starts a
// comment (shift-click extends it to a range); added comments are listed in the rework form and
// sent as JSON in its `comments` field. Text typed here only ever becomes text (textContent).
(function () {
  var field = document.getElementById("comments-field");
  var list = document.querySelector("#pending-comments ol");
  var none = document.querySelector("#pending-comments .none");
  if (!field || !list) { return; }
  var comments = [];
  var anchor = null;

  function sync() {
    field.value = JSON.stringify(comments);
    list.textContent = "";
    comments.forEach(function (comment, index) {
      var item = document.createElement("li");
      item.className = "pending-comment";
      var where = document.createElement("code");
      where.textContent = comment.artifact + ":" + comment.lines;
      item.appendChild(where);
      item.appendChild(document.createTextNode(" " + comment.comment + " "));
      var remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "remove";
      remove.onclick = function () { comments.splice(index, 1); sync(); };
      item.appendChild(remove);
      list.appendChild(item);
    });
    if (none) { none.hidden = comments.length > 0; }
  }

  function closeEditors() {
    document.querySelectorAll("tr.comment-editor").forEach(function (row) { row.remove(); });
    document.querySelectorAll("tr.selected").forEach(function (row) { row.classList.remove("selected"); });
  }

  function openEditor(section, first, last) {
    closeEditors();
    var rows = section.querySelectorAll("table.source tr[data-line]");
    var lastRow = null;
    rows.forEach(function (row) {
      var line = Number(row.getAttribute("data-line"));
      if (line >= first && line <= last) { row.classList.add("selected"); lastRow = row; }
    });
    if (!lastRow) { return; }
    var lines = first === last ? String(first) : first + "-" + last;
    var editor = document.createElement("tr");
    editor.className = "comment-editor";
    var cell = document.createElement("td");
    cell.colSpan = 2;
    var label = document.createElement("label");
    label.textContent = "Comment on " + section.getAttribute("data-artifact") + ":" + lines;
    var text = document.createElement("textarea");
    text.className = "comment-text";
    var add = document.createElement("button");
    add.type = "button";
    add.className = "add-comment";
    add.textContent = "Add comment";
    add.onclick = function () {
      if (!text.value.trim()) { text.focus(); return; }
      comments.push({ artifact: section.getAttribute("data-artifact"), lines: lines, comment: text.value.trim() });
      closeEditors();
      sync();
    };
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.onclick = closeEditors;
    label.appendChild(text);
    cell.appendChild(label);
    cell.appendChild(add);
    cell.appendChild(cancel);
    editor.appendChild(cell);
    lastRow.after(editor);
    text.focus();
  }

  document.querySelectorAll("section.artifact").forEach(function (section) {
    var views = section.querySelector(".views");
    section.querySelectorAll(".show-rendered, .show-source").forEach(function (button) {
      button.onclick = function () {
        views.setAttribute("data-view", button.classList.contains("show-source") ? "source" : "rendered");
      };
    });
    section.querySelectorAll("button.comment-line").forEach(function (button) {
      button.onclick = function (click) {
        var line = Number(button.closest("tr").getAttribute("data-line"));
        if (click.shiftKey && anchor && anchor.section === section) {
          openEditor(section, Math.min(anchor.line, line), Math.max(anchor.line, line));
        } else {
          anchor = { section: section, line: line };
          openEditor(section, line, line);
        }
      };
    });
  });
  sync();
})();
